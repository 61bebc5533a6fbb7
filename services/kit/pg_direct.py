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
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, Table
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Dialect, make_url

from services.kit.db import lost_database


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (the SQLAlchemy URL of the settings) as asyncpg's DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class DirectConnections:
    """A few asyncpg connections kept open for one hot path.

    No pre-ping: when a connection turns out lost (the server restarted, the network dropped, the
    session was terminated), it and every idle one are closed and the next :meth:`acquire` opens a
    fresh one — so the caller's one retry (the group committer's, the relay's next pass) succeeds.
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
        except BaseException as exc:
            # A lost connection or a cancelled statement leaves the session's state unknown:
            # never hand it out again. A server-side refusal (say a unique violation) leaves a
            # usable session once rolled back.
            broken = lost_database(exc) or isinstance(exc, asyncio.CancelledError)
            raise
        finally:
            if broken:  # the others are likely gone too (a restart, a failover): start afresh
                for idle in self._idle:
                    idle.terminate()
                self._idle = []
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


_POSTGRESQL: Dialect = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped


def _json(value: Any) -> str:
    """A JSON column's value as asyncpg sends it (text): compact, UTF-8 as is, like
    `json.dumps(value, ensure_ascii=False, separators=(",", ":"))` at a seventh of its cost (a
    ticket has seven JSON columns)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: built once per table
class InsertInto:
    """Rows for one table, inserted by asyncpg with SQL generated from the table."""

    table: Table
    columns: tuple[str, ...]
    array_types: tuple[str, ...]  # each column's PostgreSQL type as an array, for unnest()
    json_columns: frozenset[str]

    @classmethod
    def of(cls, table: Table, columns: Sequence[str] | None = None) -> InsertInto:
        """All columns but an autoincrementing key, unless `columns` names them."""
        auto = table.autoincrement_column
        names = tuple(columns) if columns is not None else tuple(c.name for c in table.c if c is not auto)
        # Without a length: an explicit cast to VARCHAR(n) would silently cut a longer value, where
        # the INSERT's own assignment to the column refuses it.
        array_types = tuple(re.sub(r"\(\d+\)", "", table.c[n].type.compile(dialect=_POSTGRESQL)) + "[]" for n in names)
        json_columns = frozenset(n for n in names if isinstance(table.c[n].type, JSON))
        return cls(table, names, array_types, json_columns)

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """One list per column, unnest()'s arguments; JSON values serialised (asyncpg sends json as text)."""
        return [
            [_json(row[n]) for row in rows] if n in self.json_columns else [row[n] for row in rows]
            for n in self.columns
        ]

    def from_arrays(self, first_parameter: int) -> str:
        """INSERT … SELECT FROM unnest($n::type[], …): every row from one array per column."""
        arrays = ", ".join(f"${first_parameter + i}::{t}" for i, t in enumerate(self.array_types))
        return f"INSERT INTO {self.table.name} ({_quoted(self.columns)}) SELECT * FROM unnest({arrays})"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


async def insert_together(
    conn: asyncpg.Connection, parts: Sequence[tuple[InsertInto, Sequence[Mapping[str, Any]]]]
) -> None:
    """The rows of several tables in one statement — one round trip, one wake-up of the server —
    as data-modifying WITH clauses over unnest(). A constraint violation anywhere fails it all."""
    present = tuple((insert, rows) for insert, rows in parts if rows)
    if not present:
        return
    arguments = [array for insert, rows in present for array in insert.arrays(rows)]
    await conn.execute(_together_sql(tuple(insert for insert, _ in present)), *arguments)


@lru_cache(maxsize=64)
def _together_sql(inserts: tuple[InsertInto, ...]) -> str:
    clauses: list[str] = []
    parameter = 1
    for insert in inserts:
        clauses.append(insert.from_arrays(parameter))
        parameter += len(insert.columns)
    *first, last = clauses
    with_clauses = ", ".join(f"w{i} AS ({clause})" for i, clause in enumerate(first))
    return f"WITH {with_clauses} {last}" if first else last
