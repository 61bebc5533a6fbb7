"""The kit's durable consumer and JetStream's ack wait, on a real JetStream and PostgreSQL: events a
crashed consumer process had fetched but not acknowledged are handled by its successor within
seconds (JetStream gives them back only when their ack wait runs out, which used to be 30 s), and a
fetch that takes longer than the ack wait to work through is not delivered a second time while its
consumer is still on it."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.events.v1 import events_pb2

from services.kit.consumer import DurableConsumer
from services.kit.db import create_engine
from services.kit.messaging import NatsConnection, ensure_stream
from tests.kit.slow_consumer import DURABLE, STREAM, SUBJECT, dead_letters, handled, handled_by, metadata, processed
from tests.kit.submitted import submitted
from tests.support.nats import NatsServer
from tests.support.processes import REPO_ROOT, kill_process, spawn


@pytest.fixture
async def engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_database_url, pool_size=2)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def js(own_nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(own_nats_server.url)
    stream = client.jetstream()
    await ensure_stream(stream, STREAM, 60.0)
    yield stream
    await client.close()


async def publish(js: JetStreamContext, events: list[events_pb2.Event]) -> None:
    for event in events:
        await js.publish(SUBJECT, event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})


async def handlers(engine: AsyncEngine) -> dict[str, str]:
    """event id → which consumer handled it."""
    async with engine.connect() as conn:
        return {row.event_id: row.by for row in await conn.execute(select(handled))}


async def until_handled(engine: AsyncEngine, count: int, within: float) -> dict[str, str]:
    deadline = time.monotonic() + within
    while True:
        found = await handlers(engine)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def consumer(
    own_nats_server: NatsServer, engine: AsyncEngine, **options: object
) -> tuple[NatsConnection, DurableConsumer]:
    connection = NatsConnection(own_nats_server.url, name="ack-wait-test", stream=STREAM, duplicate_window_seconds=60)
    connection.start()
    durable = DurableConsumer(
        connection,
        engine,
        durable=DURABLE,
        filter_subjects=[SUBJECT],
        processed=processed,
        dead_letters=dead_letters,
        **options,  # type: ignore[arg-type]
    )
    return connection, durable


@pytest.mark.fault
async def test_events_in_the_hands_of_a_killed_consumer_come_back_within_seconds(
    own_nats_server: NatsServer, js: JetStreamContext, engine: AsyncEngine, fresh_database_url: str, tmp_path: Path
) -> None:
    events = [submitted() for _ in range(4)]
    await publish(js, events)  # there before the consumer starts: its first fetch takes all four
    slow = spawn(
        [sys.executable, "-m", "tests.kit.slow_consumer", own_nats_server.url, fresh_database_url],
        log_path=tmp_path / "slow-consumer.log",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=REPO_ROOT,
    )
    connection, successor = consumer(own_nats_server, engine, handler=handled_by("successor"))
    running: asyncio.Task[None] | None = None
    try:
        assert len(await until_handled(engine, 1, within=60)) >= 1, (tmp_path / "slow-consumer.log").read_text()
        pending = (await js.consumer_info(STREAM, DURABLE)).num_ack_pending
        assert pending >= 2, "the rest of the fetch is in the slow consumer's hands"
        kill_process(slow)
        killed = time.monotonic()

        running = asyncio.create_task(successor.run())
        found = await until_handled(engine, len(events), within=60)
        took = time.monotonic() - killed
        assert sorted(found) == sorted(e.event_id for e in events), "every event handled, each once"
        assert list(found.values()).count("successor") >= pending - 1  # one may have committed as it died
        assert took < 15, f"the events the killed consumer held waited {took:.1f} s for their redelivery"
    finally:
        kill_process(slow)
        successor.stop()
        if running is not None:
            await asyncio.wait_for(running, timeout=10)
        await connection.close()


async def test_a_fetch_worked_on_longer_than_the_ack_wait_is_not_delivered_to_another_replica(
    own_nats_server: NatsServer, js: JetStreamContext, engine: AsyncEngine
) -> None:
    events = [submitted() for _ in range(4)]
    await publish(js, events)  # one fetch, worked on for 4 × 0.6 s: longer than the 1 s ack wait
    busy_connection, busy = consumer(own_nats_server, engine, handler=handled_by("busy", 0.6), ack_wait_seconds=1.0)
    idle_connection, idle = consumer(own_nats_server, engine, handler=handled_by("idle"), ack_wait_seconds=1.0)
    running = [asyncio.create_task(busy.run())]
    try:
        assert len(await until_handled(engine, 1, within=30)) >= 1
        running.append(asyncio.create_task(idle.run()))  # a second replica, asking for work all along
        found = await until_handled(engine, len(events), within=30)
        assert found == {e.event_id: "busy" for e in events}, "the busy replica kept its fetch"
        info = await js.consumer_info(STREAM, DURABLE)
        assert (info.num_redelivered, info.num_ack_pending) == (0, 0)
        assert info.delivered.consumer_seq == len(events), "each event delivered once"
    finally:
        busy.stop()
        idle.stop()
        await asyncio.wait_for(asyncio.gather(*running), timeout=10)
        await busy_connection.close()
        await idle_connection.close()
