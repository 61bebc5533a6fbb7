"""Transactional outbox: events commit with the state change that caused them, then a relay
publishes them to JetStream with `Nats-Msg-Id` = event id and deletes them.

A crash after the commit loses nothing (the row is still there at restart); a crash after the
publish but before the delete republishes, and JetStream's duplicate window drops the copy. Only
one relay per database publishes at a time (a PostgreSQL advisory lock), so events leave in commit
order even with many replicas. On PostgreSQL the relay's statements go straight through asyncpg
(`services.kit.pg_direct`): every event of every service passes here, and through SQLAlchemy's
layer a pass cost as much CPU as the publishing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from supportflow.events.v1 import events_pb2

from services.kit.db import is_postgres
from services.kit.events import subject_for
from services.kit.messaging import NatsConnection
from services.kit.pg_direct import DirectConnections

log = logging.getLogger(__name__)

#: An outbox row as selected: (id, event_id, subject, payload), from asyncpg or SQLAlchemy.
Row = Any


def outbox_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def outbox_rows(events: Sequence[events_pb2.Event]) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [
        {
            "event_id": e.event_id,
            "subject": subject_for(e.organization, e.type),
            "payload": e.SerializeToString(),
            "created_at": now,
        }
        for e in events
    ]


async def add_to_outbox(conn: AsyncConnection, table: Table, events: Sequence[events_pb2.Event]) -> None:
    """Stage events in the caller's transaction."""
    if events:
        await conn.execute(table.insert(), outbox_rows(events))


class OutboxRelay:
    """Publishes staged events. `wake()` after a commit for low latency; it also polls."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        nats: NatsConnection,
        *,
        batch_size: int = 200,
        poll_seconds: float = 0.5,
        publish_timeout: float = 5.0,
        coalesce_seconds: float = 0.02,
    ) -> None:
        self._engine, self._table, self._nats = engine, table, nats
        self._batch, self._poll, self._publish_timeout = batch_size, poll_seconds, publish_timeout
        # After a pass, commits arriving within this long are relayed together: under load one
        # pass per many commits, instead of a transaction per commit competing with the requests.
        self._coalesce = coalesce_seconds
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = zlib.crc32(table.name.encode())
        self._direct = (
            DirectConnections(engine.url.render_as_string(hide_password=False), keep=1) if is_postgres(engine) else None
        )
        self._select = f"SELECT id, event_id, subject, payload FROM {table.name} ORDER BY id LIMIT $1"
        self._delete = f"DELETE FROM {table.name} WHERE id = ANY($1::bigint[])"
        self.published = 0
        self._another_relays = False  # the last pass found another replica's relay at work

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        """Finish: one last pass publishes what the last requests committed, then `run` returns."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until `stop()` (or cancellation)."""
        try:
            await self._relay_until_stopped()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._direct is not None:
            await self._direct.close()

    async def _relay_until_stopped(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                sent = await self.relay_once()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                await self._pause(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._another_relays:
                # That replica publishes our rows with its own; trying again at each of our commits
                # would only make both pass over fewer rows each. Look again after a poll interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._poll)
            elif sent < self._batch:
                self._wakeup.clear()
                await self._pause(self._poll)
                if self._coalesce and not self._stopping.is_set():
                    await asyncio.sleep(self._coalesce)
        with contextlib.suppress(Exception):  # NATS unreachable: the rows wait for the next start
            await self.relay_once()

    async def _pause(self, seconds: float) -> None:
        """Sleep until woken (a commit, or stop) or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)

    async def relay_once(self) -> int:
        """Publish up to one batch. Returns how many events left the outbox."""
        js = await asyncio.wait_for(self._nats.jetstream(), timeout=self._publish_timeout)
        if self._direct is not None:
            async with self._direct.acquire() as pg, pg.transaction():
                self._another_relays = not await pg.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key)
                if self._another_relays:
                    return 0
                rows: Sequence[Row] = await pg.fetch(self._select, self._batch)
                done = await self._publish(js, rows)
                if done:
                    await pg.execute(self._delete, done)
        else:
            async with self._engine.begin() as conn:
                t = self._table
                query = select(t.c.id, t.c.event_id, t.c.subject, t.c.payload).order_by(t.c.id).limit(self._batch)
                rows = (await conn.execute(query)).all()
                done = await self._publish(js, rows)
                if done:
                    await conn.execute(delete(t).where(t.c.id.in_(done)))
        self.published += len(done)
        if len(done) < len(rows):
            raise RuntimeError(f"{len(rows) - len(done)} of {len(rows)} events not acknowledged by JetStream")
        return len(done)

    async def _publish(self, js: JetStreamContext, rows: Sequence[Row]) -> list[int]:
        """Publishes the rows (id, event_id, subject, payload) at once; the ids JetStream acknowledged."""
        if not rows:
            return []
        started = time.monotonic()
        futures = [await js.publish_async(r[2], r[3], headers={"Nats-Msg-Id": r[1]}) for r in rows]
        results = await asyncio.wait_for(
            asyncio.gather(*futures, return_exceptions=True), timeout=self._publish_timeout
        )
        failures = [res for res in results if isinstance(res, BaseException)]
        if failures:
            log.warning("%d of %d events not acknowledged by JetStream: %r", len(failures), len(rows), failures[0])
        log.debug("relayed %d events in %.1f ms", len(rows) - len(failures), (time.monotonic() - started) * 1000)
        return [r[0] for r, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)]
