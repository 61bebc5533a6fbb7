"""`python -m services.intake`: run the intake service until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys

from services.intake.bootstrap import MIGRATIONS, bootstrap
from services.intake.settings import IntakeSettings
from services.kit import runtime
from services.kit.db import create_engine
from services.kit.migrate import upgrade


async def _migrate(settings: IntakeSettings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine, MIGRATIONS, "intake")
    finally:
        await engine.dispose()


async def _serve(settings: IntakeSettings) -> None:
    intake = bootstrap(settings)
    await intake.start()
    await intake.host.serve_until_signalled()


def main() -> None:
    settings = IntakeSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime.run(_migrate(settings) if sys.argv[1:] == ["migrate"] else _serve(settings))


if __name__ == "__main__":
    main()
