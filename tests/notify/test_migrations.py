"""Notify's migrations produce exactly the schema the code declares (tables.py), on PostgreSQL and
on SQLite, and can be rolled back: a schema change without a migration fails here, not in production."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from services.kit.db import create_engine
from services.kit.migrate import downgrade, upgrade
from services.notify.adapters import tables
from services.notify.bootstrap import MIGRATIONS


def _drift(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return [d for d in compare_metadata(context, tables.metadata) if not _is_foreign_table(d)]


def _is_foreign_table(diff: Any) -> bool:
    """Tables of other services or of Alembic itself in a shared database are not notify's concern."""
    return isinstance(diff, tuple) and diff[0] == "remove_table" and not diff[1].name.startswith("notify_")


def _table_names(conn: Connection) -> set[str]:
    return {n for n in inspect(conn).get_table_names() if n.startswith("notify_")}


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_migrations_build_the_declared_schema_and_roll_back(
    backend: str, fresh_database_url: str, sqlite_url: str
) -> None:
    engine = create_engine(fresh_database_url if backend == "postgresql" else sqlite_url)
    try:
        await upgrade(engine, MIGRATIONS, "notify")
        async with engine.connect() as conn:
            assert await conn.run_sync(_drift) == []
            assert await conn.run_sync(_table_names) == {t.name for t in tables.metadata.sorted_tables}
        await upgrade(engine, MIGRATIONS, "notify")  # at head already: nothing to do, no error
        await downgrade(engine, MIGRATIONS, "notify", "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == set()
    finally:
        await engine.dispose()
