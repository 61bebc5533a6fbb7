"""`python -m services.notify`: run the notify service until SIGTERM/SIGINT; `… migrate` applies
its database migrations and exits."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from services.kit import runtime
from services.kit.db import create_engine
from services.kit.migrate import upgrade
from services.notify.bootstrap import MIGRATIONS, bootstrap
from services.notify.domain.errors import RulesError
from services.notify.settings import NotifySettings

log = logging.getLogger("services.notify")


async def _migrate(settings: NotifySettings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine, MIGRATIONS, "notify")
    finally:
        await engine.dispose()


async def _serve(settings: NotifySettings, env: Mapping[str, str]) -> None:
    notify = bootstrap(settings, env=env)
    await notify.start()
    await notify.host.serve_until_signalled()


def main() -> None:
    settings = NotifySettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if sys.argv[1:] == ["migrate"]:
        runtime.run(_migrate(settings))
        return
    # The one read of the process environment beyond the settings: the webhooks' url_env and
    # secret_env name variables that only the notification configuration knows about.
    env = dict(os.environ)
    try:
        runtime.run(_serve(settings, env))
    except RulesError as exc:
        log.error("%s: %s", settings.config_dir, exc.message)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
