"""SQLAlchemy 2 engines and transactions, for PostgreSQL (production) and SQLite (embedded)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for `url`: `postgresql+asyncpg://…` or `sqlite+aiosqlite:///path`."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" below issue BEGIN IMMEDIATE itself: a write transaction takes the
        # lock up front instead of failing on upgrade when another connection writes.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(conn: AsyncConnection | AsyncEngine) -> bool:
    return conn.dialect.name == "postgresql"


async def read_as_of_one_moment(conn: AsyncConnection) -> None:
    """Make the next transaction on `conn` read-only, every statement in it seeing the database as
    of the same moment (PostgreSQL: REPEATABLE READ READ ONLY), so that a record read in several
    statements never shows half of a change committed in between. Call before `begin()`. (SQLite:
    every transaction takes the database's lock up front, so nothing commits in between.)"""
    if is_postgres(conn):
        await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One database transaction: committed when the block ends, rolled back if it raises."""
    async with engine.begin() as conn:
        yield conn


async def ping(engine: AsyncEngine) -> None:
    """Raises when the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def insert_ignoring_duplicates(conn: AsyncConnection, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT that does nothing when a unique key already exists. True when a row was inserted."""
    dialect = postgresql if is_postgres(conn) else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)


def stored_utc(value: datetime | None) -> datetime | None:
    """A timestamp read back from the database, as an aware UTC datetime (SQLite returns naive ones;
    everything supportflow stores is UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_utc_required(value: datetime) -> datetime:
    out = stored_utc(value)
    assert out is not None
    return out


def lost_database(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached or dropped the connection (a restart,
    a failover, a network cut) rather than refusing the statement: retrying on a new connection
    may succeed, so callers are told UNAVAILABLE, and idempotent work may retry once itself."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
        exc = exc.__cause__ or exc  # SQLAlchemy's asyncpg adapter wraps the driver's exception
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError  # "connection is closed", "connection was closed in the middle of operation"
        | asyncpg.InternalClientError  # a session the server ended while idle: "cannot switch to state …"
        | asyncpg.PostgresConnectionError  # class 08: connection exceptions
        | asyncpg.CannotConnectNowError  # the server is starting up or shutting down
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError,
    )
