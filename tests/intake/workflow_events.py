"""Shared by the read-model and requester-action tests: publish workflow events to JetStream exactly
as the workflow service will, read back what intake put on the stream, and poll for a state with a
deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import nats
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.adapters import tables
from services.kit.events import new_event, subject_for
from services.kit.messaging import ensure_stream
from tests.intake.conftest import auth, token

T = TypeVar("T")

STREAM = "SUPPORTFLOW"
ORG = "acme"
#: How long a test waits for something asynchronous (relay, consumer) before it gives up.
DEADLINE = 10.0
POLL = 0.05


async def until(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = DEADLINE) -> T:
    """Call `fetch` every 50 ms until `done(value)` or `within` seconds pass; the last value either way,
    so the caller's assertion shows what was there instead."""
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(POLL)


async def ticket_when(
    stub: intake_pb2_grpc.IntakeServiceStub,
    number: str,
    done: Callable[[intake_pb2.Ticket], bool],
    tok: str = "",
    within: float = DEADLINE,
) -> intake_pb2.Ticket:
    """GetTicket, polled until `done(ticket)` holds (or the deadline passes)."""
    metadata = auth(tok or token())

    async def fetch() -> intake_pb2.Ticket:
        result: intake_pb2.Ticket = await stub.GetTicket(
            intake_pb2.GetTicketRequest(ticket_number=number), metadata=metadata
        )
        return result

    return await until(fetch, done, within)


def has_entry(*event_types: str) -> Callable[[intake_pb2.Ticket], bool]:
    """The ticket's timeline lists each of `event_types`."""
    return lambda t: set(event_types) <= {e.event_type for e in t.timeline}


WORKFLOW = ("system", "system")  # what the workflow's own steps carry (common.v1.Actor)


def workflow_event(ticket_number: str, payload: Message, *, actor: tuple[str, str] = WORKFLOW) -> events_pb2.Event:
    """The envelope the workflow service emits for `payload` (e.g. `TicketClassified`)."""
    return new_event(
        payload=payload,
        org=ORG,
        ticket_number=ticket_number,
        producer="workflow",
        actor_subject=actor[0],
        actor_role=actor[1],
        occurred_at=datetime.now(UTC),
    )


@dataclass
class Workflow:
    """Publishes `Event` envelopes as the workflow service does: serialized, on
    `supportflow.<org>.<type>`, with `Nats-Msg-Id` = event id."""

    nc: Client
    js: JetStreamContext

    async def publish(
        self, ticket_number: str, payload: Message, *, actor: tuple[str, str] = WORKFLOW
    ) -> events_pb2.Event:
        event = workflow_event(ticket_number, payload, actor=actor)
        await self.send(event)
        return event

    async def send(self, event: events_pb2.Event, msg_id: str | None = None) -> PubAck:
        """Publish an already built envelope (again); `msg_id` defaults to its event id."""
        return await self.raw(
            subject_for(event.organization, event.type), event.SerializeToString(), msg_id or event.event_id
        )

    async def raw(self, subject: str, data: bytes, msg_id: str | None = None) -> PubAck:
        return await self.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id or str(uuid.uuid4())})


@asynccontextmanager
async def workflow(nats_url: str) -> AsyncIterator[Workflow]:
    nc = await nats.connect(nats_url, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        # As every service does at start-up; intake may not have created the stream yet.
        await ensure_stream(js, STREAM, 900.0)
        yield Workflow(nc, js)
    finally:
        await nc.close()


class StreamTail:
    """The events put on the stream since it was opened, read message by message (js.get_msg)."""

    def __init__(self, js: JetStreamContext, first: int) -> None:
        self._js, self._next = js, first
        self.events: list[events_pb2.Event] = []

    @classmethod
    async def open(cls, js: JetStreamContext) -> StreamTail:
        try:
            last = (await js.stream_info(STREAM)).state.last_seq
        except NotFoundError:
            last = 0
        return cls(js, last + 1)

    async def read(self) -> list[events_pb2.Event]:
        """Everything stored up to now (undecodable messages skipped)."""
        last = (await self._js.stream_info(STREAM)).state.last_seq
        while self._next <= last:
            try:
                msg = await self._js.get_msg(STREAM, seq=self._next)
            except NotFoundError:
                msg = None
            self._next += 1
            if msg is not None and msg.data:
                with contextlib.suppress(DecodeError):
                    self.events.append(events_pb2.Event.FromString(msg.data))
        return self.events

    async def of(self, ticket_number: str, event_type: str) -> list[events_pb2.Event]:
        return [e for e in await self.read() if e.ticket_number == ticket_number and e.type == event_type]


async def outbox_size(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.outbox)) or 0)


async def published(
    engine: AsyncEngine, tail: StreamTail, ticket_number: str, event_type: str
) -> list[events_pb2.Event]:
    """The `event_type` events intake published for the ticket, once its outbox is empty: everything
    committed so far has reached the stream, so a count read now is final."""
    left = await until(lambda: outbox_size(engine), lambda n: n == 0)
    assert left == 0, f"{left} events still in intake's outbox"
    return await tail.of(ticket_number, event_type)


async def resolve(wf: Workflow, stub: intake_pb2_grpc.IntakeServiceStub, number: str) -> intake_pb2.Ticket:
    """Have the workflow resolve the ticket (as an agent's resolution task does) and wait until
    intake shows it resolved."""
    await wf.publish(
        number,
        events_pb2.TicketResolved(resolved_by="agent-8", cause="bad export filter", summary="ERP patched to 9.1.3"),
        actor=("agent-8", "agent"),
    )
    got = await ticket_when(stub, number, lambda t: t.status == types_pb2.TICKET_STATUS_RESOLVED)
    assert got.status == types_pb2.TICKET_STATUS_RESOLVED
    return got
