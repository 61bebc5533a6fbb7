"""`python -m tests.kit.slow_consumer <nats url> <database url>`: the kit's durable consumer in a
process of its own, taking a second over each event, for a test to kill in the middle of a fetch
(tests/kit/test_consumer_ack_wait.py). Also the tables and handler that test shares with it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncConnection
from supportflow.events.v1 import events_pb2

from services.kit.consumer import DurableConsumer, dead_letters_table, processed_events_table
from services.kit.db import create_engine
from services.kit.messaging import NatsConnection

STREAM = "SUPPORTFLOW"
SUBJECT = "supportflow.acme.ticket.submitted"
DURABLE = "ack-wait-test"
metadata = MetaData()
processed = processed_events_table(metadata, "ackwait")
dead_letters = dead_letters_table(metadata, "ackwait")
#: Which consumer handled each event.
handled = Table("ackwait_handled", metadata, Column("event_id", String(64), primary_key=True), Column("by", String(20)))


def handled_by(who: str, seconds: float = 0.0) -> Callable[[AsyncConnection, events_pb2.Event], Awaitable[None]]:
    async def handle(conn: AsyncConnection, event: events_pb2.Event) -> None:
        await asyncio.sleep(seconds)
        await conn.execute(handled.insert().values(event_id=event.event_id, by=who))

    return handle


async def main(nats_url: str, database_url: str) -> None:
    engine = create_engine(database_url, pool_size=2)
    connection = NatsConnection(nats_url, name="slow-consumer", stream=STREAM, duplicate_window_seconds=60)
    connection.start()
    consumer = DurableConsumer(
        connection,
        engine,
        durable=DURABLE,
        filter_subjects=[SUBJECT],
        handler=handled_by("slow", seconds=1.0),
        processed=processed,
        dead_letters=dead_letters,
    )
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
