"""`python -m services.workflow`: run the workflow service until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import sys

from services.kit import runtime
from services.kit.db import create_engine
from services.kit.migrate import upgrade
from services.workflow.bootstrap import MIGRATIONS, bootstrap
from services.workflow.settings import WorkflowSettings


async def _migrate(settings: WorkflowSettings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine, MIGRATIONS, "workflow")
    finally:
        await engine.dispose()


async def _serve(settings: WorkflowSettings) -> None:
    workflow = bootstrap(settings)
    await workflow.start()
    await workflow.host.serve_until_signalled()


def main() -> None:
    settings = WorkflowSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime.run(_migrate(settings) if sys.argv[1:] == ["migrate"] else _serve(settings))


if __name__ == "__main__":
    main()
