"""A hot write path's direct line to PostgreSQL: asyncpg without SQLAlchemy's execution layer.

Through SQLAlchemy's asyncio layer a statement costs about 0.3 ms of CPU here (greenlet switch,
compiled-statement cache, parameter processing, result set-up) against about 0.1 ms straight
through asyncpg, and the pool's pre-ping adds three round trips per checkout. For a path that runs
ten statements per transaction at hundreds of transactions per second, that is most of its time
(benchmarks/intake_submit.py). Everywhere else SQLAlchemy stays; here the tables remain the one
description of the schema: :class:`InsertInto` builds its SQL from them, only execution is direct.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (the SQLAlchemy URL of the settings) as asyncpg's DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class DirectConnections:
    """A few asyncpg connections kept open for one hot path.

    No pre-ping: a connection that fails with anything but a server-side SQL error (the server
    restarted, the network dropped) is closed, and the next :meth:`acquire` opens a fresh one — so
    the caller's retry (the group committer retries a failed batch item by item) succeeds.
    """

    def __init__(self, url: str, *, keep: int = 2, connect_timeout: float = 10.0) -> None:
        self._dsn = asyncpg_dsn(url)
        self._keep, self._timeout = keep, connect_timeout
        self._idle: list[asyncpg.Connection] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._take()
        broken = False
        try:
            yield conn
        except (OSError, TimeoutError, asyncpg.InterfaceError, asyncio.CancelledError):
            broken = True  # the session's state is unknown: never hand it out again
            raise
        finally:
            # A server-side error (say a unique violation) leaves a usable session once rolled back.
            if broken or conn.is_closed() or conn.is_in_transaction() or len(self._idle) >= self._keep:
                conn.terminate()
            else:
                self._idle.append(conn)

    async def _take(self) -> asyncpg.Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():  # the server may have ended it while it was idle
                return conn
        return await asyncpg.connect(self._dsn, timeout=self._timeout)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close(timeout=5)


@dataclass(frozen=True, slots=True)
class InsertInto:
    """A multi-row INSERT into `table` for asyncpg, with the SQL generated from the table."""

    table: Table
    columns: tuple[str, ...]
    sql: str
    json_columns: frozenset[str]

    @classmethod
    def of(cls, table: Table, columns: Sequence[str] | None = None) -> InsertInto:
        """All columns but an autoincrementing key, unless `columns` names them."""
        auto = table.autoincrement_column
        names = tuple(columns) if columns is not None else tuple(c.name for c in table.c if c is not auto)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        quoted = ", ".join(f'"{n}"' for n in names)
        sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({placeholders})"
        json_columns = frozenset(n for n in names if isinstance(table.c[n].type, JSON))
        return cls(table, names, sql, json_columns)

    def records(self, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        js = self.json_columns
        return [
            tuple(json.dumps(row[n], ensure_ascii=False) if n in js else row[n] for n in self.columns) for row in rows
        ]

    async def execute(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """One round trip for all rows (asyncpg pipelines executemany)."""
        if rows:
            await conn.executemany(self.sql, self.records(rows))
