"""Durable, pull-based, explicit-ack JetStream consumers that process each event once.

The handler runs inside a database transaction together with an insert into the service's
processed-events table; a redelivered event finds its row and is acknowledged without running the
handler again. A message that cannot be decoded, or whose handler raises a `DomainError` (the event
is wrong, not the system), is recorded in the dead-letter table and terminated; any other failure
is retried with a growing delay until `max_deliver`, then dead-lettered too.

The ack wait is short (5 s), so that messages a crashed process had fetched but not acknowledged
come back quickly (JetStream redelivers them only when it runs out). While a fetch is worked
through, every message of it not yet acknowledged is reported in progress every third of the ack
wait, so that a slow batch is not redelivered under its consumer's hands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from supportflow.events.v1 import events_pb2

from services.kit.db import insert_ignoring_duplicates, is_postgres
from services.kit.errors import DomainError
from services.kit.messaging import NatsConnection

log = logging.getLogger(__name__)

Handler = Callable[[AsyncConnection, events_pb2.Event], Awaitable[None]]
OwnTransactionHandler = Callable[[events_pb2.Event], Awaitable[None]]
BatchHandler = Callable[[Sequence[events_pb2.Event]], Awaitable[None]]


def processed_events_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


def dead_letters_table(metadata: MetaData, service: str) -> Table:
    return Table(
        f"{service}_dead_letters",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("consumer", String(100), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("stream_sequence", Integer, nullable=False),
        Column("event_id", String(64), nullable=True),
        Column("payload", LargeBinary, nullable=False),
        Column("error", Text, nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
    )


class DurableConsumer:
    def __init__(
        self,
        nats: NatsConnection,
        engine: AsyncEngine,
        *,
        durable: str,
        filter_subjects: Sequence[str],
        handler: Handler | None = None,
        own_transaction_handler: OwnTransactionHandler | None = None,
        batch_handler: BatchHandler | None = None,
        processed: Table,
        dead_letters: Table,
        max_deliver: int = 8,
        batch: int = 64,
        ack_wait_seconds: float = 5.0,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._nats, self._engine = nats, engine
        self.durable = durable
        self._subjects = list(filter_subjects)
        given = [h for h in (handler, own_transaction_handler, batch_handler) if h is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of handler, own_transaction_handler or batch_handler")
        self._handler, self._own, self._batch_handler = handler, own_transaction_handler, batch_handler
        if batch_handler is not None:
            self._own = lambda event: batch_handler([event])  # the one-by-one fallback
        self._processed, self._dead = processed, dead_letters
        self._max_deliver, self._batch, self._ack_wait = max_deliver, batch, ack_wait_seconds
        self._after_commit = after_commit
        self._stopping = asyncio.Event()
        self.handled = 0

    def stop(self) -> None:
        """Finish the message in hand, then `run` returns (within about a second: the fetch timeout)."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until `stop()` (or cancellation); survives NATS and database outages."""
        while not self._stopping.is_set():
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s: %s; restarting in 1s", self.durable, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=1.0)

    async def _consume(self) -> None:
        js = await self._nats.jetstream()
        config = ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=-1,  # we count deliveries ourselves and dead-letter, never drop silently
            filter_subjects=self._subjects if len(self._subjects) > 1 else None,
            filter_subject=self._subjects[0] if len(self._subjects) == 1 else None,
            max_ack_pending=1000,
        )
        await js.add_consumer(self._nats.stream, config)
        sub = await js.pull_subscribe_bind(durable=self.durable, stream=self._nats.stream)
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(self._batch, timeout=1.0)
                except (FetchTimeoutError, TimeoutError):
                    continue
                async with self._in_progress(msgs):
                    if self._batch_handler is not None and len(msgs) > 1 and not self._stopping.is_set():
                        msgs = await self._process_batch(msgs)  # what is left to take one by one
                    for msg in msgs:
                        if self._stopping.is_set():
                            await msg.nak()  # handed back at once to whoever consumes next
                        else:
                            await self._process(msg)
        finally:
            # An abandoned subscription would make the connection's drain() wait at shutdown.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(sub.unsubscribe()), timeout=1.0)

    @contextlib.asynccontextmanager
    async def _in_progress(self, msgs: Sequence[Msg]) -> AsyncIterator[None]:
        """Keep the ack wait of the fetched `msgs` from running out while they are worked on."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self._ack_wait / 3)
                for msg in msgs:
                    if not msg.is_acked:
                        with contextlib.suppress(Exception):  # a lost connection: redelivery takes over
                            await msg.in_progress()

        heart = asyncio.create_task(beat(), name=f"consumer-{self.durable}-in-progress")
        try:
            yield
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart

    async def _process(self, msg: Msg) -> None:
        meta = msg.metadata
        try:
            event = events_pb2.Event.FromString(msg.data)
            if not event.event_id:
                raise DecodeError("event without event_id")
        except DecodeError as exc:
            await self._dead_letter(msg, None, f"undecodable event: {exc}")
            return
        try:
            if self._own is not None:
                await self._handle_in_own_transaction(event)
            else:
                async with self._engine.begin() as conn:
                    if await self._mark_processed(conn, event):
                        assert self._handler is not None
                        await self._handler(conn, event)
        except DomainError as exc:
            await self._dead_letter(msg, event.event_id, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            if meta.num_delivered >= self._max_deliver:
                await self._dead_letter(msg, event.event_id, f"gave up after {meta.num_delivered} attempts: {exc!r}")
                return
            delay = min(0.5 * 2 ** (meta.num_delivered - 1), 30.0)
            log.warning(
                "consumer %s: %s failed (%r); retry %d in %.1fs",
                self.durable,
                event.type,
                exc,
                meta.num_delivered,
                delay,
            )
            await msg.nak(delay=delay)
            return
        await msg.ack()
        self.handled += 1
        if self._after_commit is not None:
            self._after_commit()

    async def _mark_processed(self, conn: AsyncConnection, event: events_pb2.Event) -> bool:
        return await insert_ignoring_duplicates(
            conn,
            self._processed,
            {"consumer": self.durable, "event_id": event.event_id, "processed_at": datetime.now(UTC)},
        )

    async def _mark_all_processed(self, conn: AsyncConnection, events: Sequence[events_pb2.Event]) -> None:
        """`_mark_processed` for a whole fetch, in one statement (one per event was a round trip each)."""
        dialect = postgresql if is_postgres(conn) else sqlite
        now = datetime.now(UTC)
        ids = dict.fromkeys(e.event_id for e in events)  # a fetch may carry a redelivered copy
        rows = [{"consumer": self.durable, "event_id": event_id, "processed_at": now} for event_id in ids]
        # One statement compiled once, the rows as its parameters (a VALUES list of the rows would
        # be compiled anew for each batch).
        await conn.execute(dialect.insert(self._processed).on_conflict_do_nothing(), rows)

    async def _process_batch(self, msgs: list[Msg]) -> list[Msg]:
        """Hand the whole fetch to the batch handler at once; on any failure, return the messages
        to be processed one by one (with the usual retries and dead letters)."""
        decoded: list[tuple[Msg, events_pb2.Event]] = []
        for msg in msgs:
            try:
                event = events_pb2.Event.FromString(msg.data)
            except DecodeError:
                return msgs  # let the single path dead-letter it
            if not event.event_id:
                return msgs
            decoded.append((msg, event))
        async with self._engine.connect() as conn:
            seen = set(
                (
                    await conn.execute(
                        select(self._processed.c.event_id).where(
                            self._processed.c.consumer == self.durable,
                            self._processed.c.event_id.in_([e.event_id for _, e in decoded]),
                        )
                    )
                ).scalars()
            )
        todo = [(m, e) for m, e in decoded if e.event_id not in seen]
        try:
            if todo:
                assert self._batch_handler is not None
                await self._batch_handler([e for _, e in todo])
                async with self._engine.begin() as conn:
                    await self._mark_all_processed(conn, [e for _, e in todo])
        except Exception as exc:
            log.info("consumer %s: batch of %d failed (%r); one by one", self.durable, len(todo), exc)
            return [m for m, _ in todo]
        for msg, _ in decoded:
            await msg.ack()
        self.handled += len(todo)
        if self._after_commit is not None and todo:
            self._after_commit()
        return []

    async def _handle_in_own_transaction(self, event: events_pb2.Event) -> None:
        """For handlers that open their own unit of work (and are idempotent by their own keys):
        skip what was processed, run the handler, then mark it. A crash in between redelivers the
        event, which the handler's idempotency absorbs. (One transaction inside another would
        deadlock on SQLite, which allows one writer.)"""
        async with self._engine.connect() as conn:
            seen = await conn.scalar(
                select(self._processed.c.event_id).where(
                    self._processed.c.consumer == self.durable, self._processed.c.event_id == event.event_id
                )
            )
        if seen is not None:
            return
        assert self._own is not None
        await self._own(event)
        async with self._engine.begin() as conn:
            await self._mark_processed(conn, event)

    async def _dead_letter(self, msg: Msg, event_id: str | None, error: str) -> None:
        log.error("consumer %s: dead-lettering %s: %s", self.durable, msg.subject, error)
        async with self._engine.begin() as conn:
            await conn.execute(
                self._dead.insert().values(
                    consumer=self.durable,
                    subject=msg.subject,
                    stream_sequence=msg.metadata.sequence.stream,
                    event_id=event_id,
                    payload=msg.data,
                    error=error[:4000],
                    recorded_at=datetime.now(UTC),
                )
            )
        await msg.term()
