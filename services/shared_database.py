"""What `supportflow up` does with a PostgreSQL `SUPPORTFLOW_DATABASE_URL`: the three services share
that one database, created if it is missing.

Sharing is safe because nothing of one service's schema can meet another's: each service names its
tables, indexes and constraints with its own prefix (`intake_…`, `workflow_…`, `notify_…`), keeps its
own Alembic history in its own version table (`alembic_version_<service>`), and takes its outbox
relay's advisory lock on a key derived from its own outbox table's name. They never read each
other's tables (they talk through events), so moving a service to a database of its own later is a
matter of giving it its own URL — which the Kubernetes manifests already do.

Like `createdb`, creating the database needs the CREATEDB privilege; without it the launcher says
what to run instead. The launcher imports this lazily: `supportflow token` does not pay for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

#: PostgreSQL's answer to a connection naming a database that does not exist (invalid_catalog_name).
NO_SUCH_DATABASE = "3D000"
#: Databases every server has, to connect to while creating another one (what `createdb` does).
MAINTENANCE_DATABASES = ("postgres", "template1")


class DatabaseNotReady(Exception):
    """The database cannot be used; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Prepared:
    #: The URL without its password, for printing.
    shown: str
    created: bool


def is_postgres_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def shown(url: str) -> str:
    """The URL as it may be printed: its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def prepare_for_up(url: str) -> str:
    """The launcher's step: prepare a PostgreSQL database (SQLite needs nothing) and say so, or
    exit saying what to do. Returns the URL as it may be printed."""
    if not is_postgres_url(url):
        return shown(url)
    try:
        prepared = prepare(url)
    except DatabaseNotReady as exc:
        raise SystemExit(f"SUPPORTFLOW_DATABASE_URL: {exc}") from None
    verb = "created" if prepared.created else "using"
    print(f"▶ PostgreSQL: {verb} {prepared.shown}; the three services share it, each with its own tables", flush=True)
    return prepared.shown


def prepare(url: str, timeout: float = 10.0) -> Prepared:
    """Check that the PostgreSQL database of `url` answers, creating it first if it does not exist.
    Raises DatabaseNotReady with a message naming the server and what to do."""
    return asyncio.run(_prepare(make_url(url), timeout))


async def _prepare(url: URL, connect_timeout: float) -> Prepared:
    name = url.database
    if not name:
        raise DatabaseNotReady(f"{shown(str(url))} names no database: add one, e.g. …/supportflow")
    try:
        await _select_one(url, connect_timeout)
        return Prepared(shown(str(url)), created=False)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != NO_SUCH_DATABASE:
            raise DatabaseNotReady(_refused(url, exc)) from None
    except (OSError, TimeoutError) as exc:
        raise DatabaseNotReady(_unreachable(url, exc)) from None
    await _create(url, name, connect_timeout)
    return Prepared(shown(str(url)), created=True)


async def _select_one(url: URL, connect_timeout: float) -> None:
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": connect_timeout})
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _create(url: URL, name: str, connect_timeout: float) -> None:
    last: Exception | None = None
    for maintenance in MAINTENANCE_DATABASES:
        engine = create_async_engine(
            url.set(database=maintenance),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # CREATE DATABASE cannot run inside a transaction
            connect_args={"timeout": connect_timeout},
        )
        try:
            async with engine.connect() as conn:
                quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                await conn.execute(text(f"CREATE DATABASE {quoted}"))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "42P04":  # duplicate_database: another launcher won
                return
            last = exc
            if getattr(exc.orig, "sqlstate", None) != NO_SUCH_DATABASE:
                break
        finally:
            await engine.dispose()
    how = f"createdb -h {url.host or 'localhost'} -p {url.port or 5432} -U {url.username or '$USER'} {name}"
    raise DatabaseNotReady(
        f"database {name!r} does not exist on {url.host}:{url.port or 5432} and could not be created "
        f"({_reason(last)}); create it (e.g. `{how}`) or point SUPPORTFLOW_DATABASE_URL at one that exists"
    )


def _unreachable(url: URL, exc: BaseException) -> str:
    return (
        f"PostgreSQL at {url.host}:{url.port or 5432} does not answer ({exc or type(exc).__name__}): start it, "
        "or fix SUPPORTFLOW_DATABASE_URL, or unset it to run on SQLite"
    )


def _refused(url: URL, exc: DBAPIError) -> str:
    return f"PostgreSQL refused {shown(str(url))}: {_reason(exc)}; fix SUPPORTFLOW_DATABASE_URL"


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, DBAPIError):
        return str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
    return str(exc) if exc is not None else "unknown error"
