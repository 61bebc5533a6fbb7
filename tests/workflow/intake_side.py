"""Plays intake on the stream: publishes `ticket.*` events exactly as intake's relay does, and
reads back what the workflow service published."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.js.errors import NotFoundError
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.kit.events import new_event, subject_for
from services.kit.messaging import ensure_stream

T = TypeVar("T")
STREAM = "SUPPORTFLOW"
DEADLINE = 10.0


async def until(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = DEADLINE) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def ticket_number() -> str:
    return f"TS20260302{uuid.uuid4().int % 10**6:06d}"


async def publish(
    nc: Client,
    number: str,
    payload: Message,
    *,
    org: str = "acme",
    at: datetime | None = None,
    actor: tuple[str, str] = ("E1001", "requester"),
) -> events_pb2.Event:
    js = nc.jetstream()
    await ensure_stream(js, STREAM, 900.0)
    event = new_event(
        payload=payload,
        org=org,
        ticket_number=number,
        producer="intake",
        actor_subject=actor[0],
        actor_role=actor[1],
        occurred_at=at or datetime.now(UTC),
    )
    await js.publish(subject_for(org, event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.event_id})
    return event


async def submit(
    nc: Client,
    number: str,
    *,
    urgency: str = "high",
    problem_type: str = "software_crash",
    missing: tuple[str, ...] = (),
    impact_scope: str = "department",
    vip: bool = False,
    title: str = "ERP client crashes on export",
    org: str = "acme",
) -> events_pb2.Event:
    return await publish(
        nc,
        number,
        events_pb2.TicketSubmitted(
            title=title,
            requester=types_pb2.Requester(id="E1001", name="李雷", vip=vip),
            channel="portal",
            problem_type=problem_type,
            impact_scope=impact_scope,
            urgency=urgency,
            info_incomplete=bool(missing),
            missing_info=missing,
        ),
        org=org,
    )


class StreamTail:
    """The events on the stream from the moment it was opened."""

    def __init__(self, nc: Client, first: int) -> None:
        self._js, self._next = nc.jetstream(), first
        self.events: list[events_pb2.Event] = []

    @classmethod
    async def open(cls, nc: Client) -> StreamTail:
        js = nc.jetstream()
        await ensure_stream(js, STREAM, 900.0)
        return cls(nc, (await js.stream_info(STREAM)).state.last_seq + 1)

    async def read(self) -> list[events_pb2.Event]:
        last = (await self._js.stream_info(STREAM)).state.last_seq
        while self._next <= last:
            with contextlib.suppress(NotFoundError):
                msg = await self._js.get_msg(STREAM, seq=self._next)
                with contextlib.suppress(DecodeError):
                    self.events.append(events_pb2.Event.FromString(msg.data or b""))
            self._next += 1
        return self.events

    async def types_for(self, number: str, *, producer: str = "workflow") -> list[str]:
        return [e.type for e in await self.read() if e.ticket_number == number and e.producer == producer]

    async def wait_for(self, number: str, event_type: str, within: float = DEADLINE) -> list[events_pb2.Event]:
        async def matching() -> list[events_pb2.Event]:
            return [e for e in await self.read() if e.ticket_number == number and e.type == event_type]

        return await until(matching, bool, within)
