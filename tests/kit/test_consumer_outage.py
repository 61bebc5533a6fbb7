"""The kit's durable consumer through a database outage, on a real PostgreSQL server that the test
stops and starts again and a real JetStream: events that arrive while the database is down are
handled once it is back — none dead-lettered for an outage that was not their fault, however many
deliveries the outage cost — and an event whose handler fails with the database up still is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from supportflow.events.v1 import events_pb2

from services.kit.consumer import DurableConsumer, dead_letters_table, processed_events_table
from services.kit.db import create_engine
from services.kit.events import subject_for
from services.kit.messaging import NatsConnection, ensure_stream
from tests.kit.submitted import submitted
from tests.support.nats import NatsServer
from tests.support.postgres import ThrowawayCluster, start_throwaway_cluster

STREAM = "SUPPORTFLOW"
metadata = MetaData()
processed = processed_events_table(metadata, "outage")
dead_letters = dead_letters_table(metadata, "outage")
handled = Table("outage_handled", metadata, Column("event_id", String(64), primary_key=True))
#: The handler refuses events with this title (the event's fault, not the system's).
POISON = "poison"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    server = start_throwaway_cluster(tmp_path / "postgres")
    yield server
    server.destroy()


@pytest.fixture
async def engine(cluster: ThrowawayCluster) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(cluster.server.create_database("outage"), pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def handle(conn: AsyncConnection, event: events_pb2.Event) -> None:
    if event.ticket_submitted.title == POISON:
        raise ValueError("this event cannot be handled")
    await conn.execute(handled.insert().values(event_id=event.event_id))


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def wait_for(engine: AsyncEngine, table: Table, expected: int, within: float = 30.0) -> int:
    deadline = time.monotonic() + within
    while True:
        found = await count(engine, table)
        if found >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


@pytest.mark.fault
async def test_events_arriving_while_the_database_is_down_wait_for_it_and_only_poison_is_dead_lettered(
    cluster: ThrowawayCluster, engine: AsyncEngine, own_nats_server: NatsServer
) -> None:
    connection = NatsConnection(own_nats_server.url, name="outage-test", stream=STREAM, duplicate_window_seconds=60)
    connection.start()
    consumer = DurableConsumer(
        connection,
        engine,
        durable="outage-test",
        filter_subjects=[subject_for("acme", "ticket.submitted")],
        handler=handle,
        processed=processed,
        dead_letters=dead_letters,
        max_deliver=2,  # two failed deliveries dead-letter an event: an outage costs more than that
        ack_wait_seconds=2.0,
    )
    running = asyncio.create_task(consumer.run())
    publisher = await nats.connect(own_nats_server.url)
    js = publisher.jetstream()
    await ensure_stream(js, STREAM, 60.0)

    async def publish(*events: events_pb2.Event) -> None:
        for event in events:
            await js.publish(
                subject_for("acme", event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id}
            )

    try:
        await publish(submitted())
        assert await wait_for(engine, handled, 1) == 1

        cluster.stop()
        await publish(*(submitted() for _ in range(5)))
        await asyncio.sleep(6)  # several deliveries' worth: each one fails on the missing database
        assert not running.done()
        info = await js.consumer_info(STREAM, "outage-test")
        assert info.delivered.consumer_seq > 1 + 5 * 2, "each event was delivered more often than max_deliver"
        cluster.start()

        assert await wait_for(engine, handled, 6) == 6
        assert await count(engine, dead_letters) == 0

        await publish(submitted(POISON), submitted())  # with the database up, a failing event is the event's fault
        assert await wait_for(engine, dead_letters, 1) == 1
        assert await wait_for(engine, handled, 7) == 7
    finally:
        consumer.stop()
        await asyncio.wait_for(running, timeout=10)
        await publisher.close()
        await connection.close()
