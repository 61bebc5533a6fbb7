"""The direct asyncpg path stores exactly what SQLAlchemy does, on a real PostgreSQL: every column
type the services use (text, JSON, bytes, times, numbers, NULLs), several tables in one statement,
and a value too long for its column refused rather than cut."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from services.kit.db import create_engine
from services.kit.pg_direct import DirectConnections, InsertInto, insert_together

metadata = MetaData()
parents = Table(
    "direct_parents",
    metadata,
    Column("id", String(8), primary_key=True),
    Column("doc", JSON, nullable=True),
    Column("blob", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True)),
    Column("big", BigInteger, nullable=False),
)
children = Table(
    "direct_children",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("parent", String(8), ForeignKey("direct_parents.id"), nullable=False),
    Column("note", Text, nullable=False),
)


@pytest.fixture
async def direct(fresh_database_url: str) -> AsyncIterator[tuple[DirectConnections, str]]:
    engine = create_engine(fresh_database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    connections = DirectConnections(fresh_database_url)
    yield connections, fresh_database_url
    await connections.close()


ROWS = [
    {
        "id": "p1",
        "doc": {"名字": "李雷", "tags": ["vpn", "宽带"], "n": 3, "none": None},
        "blob": b"\x00\xffbinary",
        "at": datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        "big": 2**40,
    },
    {"id": "p2", "doc": None, "blob": b"", "at": None, "big": -1},
]


async def _read_back(url: str) -> list[dict[str, object]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            parent_rows = (await conn.execute(select(parents).order_by(parents.c.id))).mappings().all()
            return [dict(r) for r in parent_rows]
    finally:
        await engine.dispose()


async def test_rows_stored_in_one_statement_read_back_as_sqlalchemy_stores_them(
    direct: tuple[DirectConnections, str],
) -> None:
    connections, url = direct
    engine = create_engine(url)
    try:
        async with engine.begin() as sa:
            await sa.execute(parents.insert(), ROWS)
    finally:
        await engine.dispose()
    first = await _read_back(url)
    assert [r["doc"] for r in first] == [ROWS[0]["doc"], None]
    assert first[0]["blob"] == b"\x00\xffbinary"
    assert first[0]["at"] == datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC)
    assert [r["big"] for r in first] == [2**40, -1]

    async with connections.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM direct_parents")
        await insert_together(
            conn,
            [
                (InsertInto.of(parents), ROWS),
                (InsertInto.of(children), [{"parent": "p1", "note": "a"}, {"parent": "p2", "note": "b"}]),
            ],
        )
        notes = await conn.fetch("SELECT parent, note FROM direct_children ORDER BY id")
    assert await _read_back(url) == first, "the direct path stores what SQLAlchemy stores"
    assert [(r["parent"], r["note"]) for r in notes] == [("p1", "a"), ("p2", "b")]


async def test_a_value_too_long_is_refused_not_cut(direct: tuple[DirectConnections, str]) -> None:
    connections, url = direct
    too_long = {**ROWS[1], "id": "p" * 9}  # String(8)
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        async with connections.acquire() as conn, conn.transaction():
            await insert_together(conn, [(InsertInto.of(parents), [ROWS[0], too_long])])
    assert await _read_back(url) == [], "nothing of the statement was stored"
    # The refusal left the connection usable.
    async with connections.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
