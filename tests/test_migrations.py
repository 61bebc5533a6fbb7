"""Each service's migrations produce exactly the schema its code declares (`adapters/tables.py`),
on PostgreSQL and on SQLite, and roll back: a schema change without a migration fails here, not
in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from services.intake import bootstrap as intake
from services.intake.adapters import tables as intake_tables
from services.kit.db import create_engine
from services.kit.migrate import downgrade, upgrade
from services.notify import bootstrap as notify
from services.notify.adapters import tables as notify_tables
from services.workflow import bootstrap as workflow
from services.workflow.adapters import tables as workflow_tables

SERVICES: dict[str, tuple[Path, MetaData]] = {
    "intake": (intake.MIGRATIONS, intake_tables.metadata),
    "workflow": (workflow.MIGRATIONS, workflow_tables.metadata),
    "notify": (notify.MIGRATIONS, notify_tables.metadata),
}


def _own(service: str, name: str) -> bool:
    """A service's tables share its prefix; others' (and Alembic's own) are not its concern."""
    return name.startswith(f"{service}_") and not name.startswith("alembic_")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrations_build_the_declared_schema_and_roll_back(
    service: str, backend: str, fresh_database_url: str, sqlite_url: str
) -> None:
    migrations, metadata = SERVICES[service]

    def drift(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(context, metadata)
            if not (isinstance(d, tuple) and d[0] == "remove_table" and not _own(service, d[1].name))
        ]

    def table_names(conn: Connection) -> set[str]:
        return {n for n in inspect(conn).get_table_names() if _own(service, n)}

    engine = create_engine(fresh_database_url if backend == "postgresql" else sqlite_url)
    try:
        await upgrade(engine, migrations, service)
        async with engine.connect() as conn:
            assert await conn.run_sync(drift) == []
            assert await conn.run_sync(table_names) == {t.name for t in metadata.sorted_tables}
        await upgrade(engine, migrations, service)  # at head already: nothing to do, no error
        await downgrade(engine, migrations, service, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(table_names) == set()
    finally:
        await engine.dispose()
