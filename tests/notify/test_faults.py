"""notify through the failures operators meet, run as its own OS process (`python -m
services.notify`) against a real SMTP server, a JetStream server and a PostgreSQL server that the
tests kill, stop and start:

- SIGKILL in the middle of sending: after a restart every notice goes out, and the only copies sent
  twice are the mails the server had taken but not yet confirmed when notify died — the window
  at-least-once SMTP cannot close (RFC 1047; services/notify/application/delivering.py), at most one
  per sender worker, each copy byte-identical with the same Message-ID;
- NATS stopped and started again while events flow: every notice once, nothing lost;
- the database down for a while: the service stays up and answers health (NOT_SERVING, then
  SERVING again), the consumer hands the events back until it can record them, and each notice
  goes out once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from grpc_health.v1 import health_pb2
from nats.aio.client import Client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from supportflow.common.v1 import types_pb2

from services.notify.adapters import tables
from tests.notify.conftest import SECRET
from tests.notify.sinks import Received, SmtpSink
from tests.notify.story import NOTIFY_DIR
from tests.notify.stream_side import Ticket, publish, ticket_number
from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.support.postgres import ThrowawayCluster
from tests.support.processes import ServiceProcess, grpc_health_status

T = TypeVar("T")
WORKERS = 2
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def eventually(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 30.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def notify_env(database_url: str, nats_url: str, smtp: SmtpSink, config_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "SUPPORTFLOW_ENVIRONMENT": "test",
        "SUPPORTFLOW_DATABASE_URL": database_url,
        "SUPPORTFLOW_NATS_URL": nats_url,
        "SUPPORTFLOW_JWT_SECRET": SECRET,
        "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
        "SUPPORTFLOW_GRPC_PORT": "{grpc_port}",
        "SUPPORTFLOW_CONFIG_DIR": str(config_dir),
        "SUPPORTFLOW_SMTP_HOST": "127.0.0.1",
        "SUPPORTFLOW_SMTP_PORT": str(smtp.port),
        "SUPPORTFLOW_SENDER_POLL_SECONDS": "0.1",
        "SUPPORTFLOW_SENDER_WORKERS": str(WORKERS),
        **extra,
    }


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "notify"
    shutil.copytree(NOTIFY_DIR, target)
    return target


@pytest.fixture
async def publisher(own_nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(own_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield client
    await client.close()


def tickets(count: int) -> list[Ticket]:
    return [Ticket(ticket_number(), lambda: datetime.now(UTC)) for _ in range(count)]


async def submit(nc: Client, ticket: Ticket) -> None:
    """What intake's and workflow's relays publish for a new ticket: each requester gets a receipt."""
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P2))


class Notices:
    """notify's e-mail notices, read from its database (NullPool: the database may come and go)."""

    def __init__(self, database_url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(database_url, poolclass=NullPool)

    async def emails(self) -> dict[str, tuple[str, str]]:
        """Message-ID → (ticket number, status) of every e-mail notice."""
        query = select(
            tables.notifications.c.payload, tables.notifications.c.ticket_number, tables.notifications.c.status
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.where(tables.notifications.c.channel == "email"))).all()
        return {message_id(r.payload): (r.ticket_number, r.status) for r in rows}

    async def all_sent(self, numbers: list[str]) -> bool:
        found = await self.emails()
        return {n for n, _ in found.values()} == set(numbers) and all(s == "sent" for _, s in found.values())

    async def dead_letters(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(tables.dead_letters)) or 0)


def message_id(data: bytes) -> str:
    return str(message_from_bytes(data, policy=policy.default)["Message-ID"])


def copies(received: list[Received]) -> collections.Counter[str]:
    return collections.Counter(message_id(r.data) for r in received)


@pytest.mark.fault
async def test_sigkill_mid_send_loses_no_notice_and_repeats_only_the_unconfirmed_ones(
    fresh_database_url: str,
    own_nats_server: NatsServer,
    publisher: Client,
    smtp: SmtpSink,
    config_dir: Path,
    service_process_factory: ServiceFactory,
) -> None:
    # A slow server: each mail is taken, then confirmed a second later; notify sends two at a time.
    smtp.hold_reply_seconds = 1.0
    env = notify_env(
        fresh_database_url, own_nats_server.url, smtp, config_dir,
        SUPPORTFLOW_SEND_TIMEOUT_SECONDS="3", SUPPORTFLOW_SENDER_BATCH=str(WORKERS),
    )  # fmt: skip
    notify = service_process_factory("notify", "services.notify", env)
    notices = Notices(fresh_database_url)
    batch = tickets(6)
    for ticket in batch:
        await submit(publisher, ticket)

    def mid_send() -> bool:
        return smtp.holding > 0 and len(smtp.acknowledged) >= 2

    await eventually(_now(mid_send), bool)
    assert mid_send(), "notify was sending when killed"
    notify.kill()
    taken = copies(smtp.received)
    unconfirmed = taken - copies(smtp.acknowledged)  # taken, but notify never heard the 250
    assert 1 <= len(unconfirmed) <= WORKERS

    notify.start()  # the claims of the killed process run out after their lease (about 40 s here)
    numbers = [t.number for t in batch]
    assert await eventually(lambda: notices.all_sent(numbers), bool, within=120), await notices.emails()
    emails = await notices.emails()
    received = copies(smtp.received)
    assert set(received) == set(emails), "every notice went out, nothing else did"
    twice = {mid for mid, n in received.items() if n > 1}
    assert set(unconfirmed) <= twice, "a mail notify could not know was taken is sent again"
    assert len(twice) <= WORKERS, f"at most one mail per send in flight: {received}"
    assert max(received.values()) == 2, f"and once again only: {received}"
    for mid in twice:
        first, second = [r.data for r in smtp.received if message_id(r.data) == mid]
        assert first == second, "the copy is byte for byte the mail the server already has"
    await notices.engine.dispose()


@pytest.mark.fault
async def test_nats_stopped_and_started_while_events_flow_loses_nothing(
    fresh_database_url: str,
    own_nats_server: NatsServer,
    publisher: Client,
    smtp: SmtpSink,
    config_dir: Path,
    service_process_factory: ServiceFactory,
) -> None:
    notify = service_process_factory(
        "notify", "services.notify", notify_env(fresh_database_url, own_nats_server.url, smtp, config_dir)
    )
    notices = Notices(fresh_database_url)
    batch = tickets(12)

    async def relay() -> None:
        """Publishes as intake's and workflow's relays do: what fails while NATS is down is published
        again later (their outboxes keep it), under the same Nats-Msg-Id."""
        for ticket in batch:
            events = [ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P2)]
            for event in events:
                while True:
                    try:
                        await publish(publisher, event)
                        break
                    except Exception:
                        await asyncio.sleep(0.2)
            await asyncio.sleep(0.1)

    flowing = asyncio.create_task(relay())
    await eventually(lambda: _len(smtp.received), lambda n: n >= 3)
    own_nats_server.stop()
    await asyncio.sleep(3)
    assert notify.running
    own_nats_server.start()
    await asyncio.wait_for(flowing, timeout=60)

    numbers = [t.number for t in batch]
    assert await eventually(lambda: notices.all_sent(numbers), bool, within=60), await notices.emails()
    received = copies(smtp.received)
    assert set(received) == set(await notices.emails())
    assert set(received.values()) == {1}, "without a crash, every mail exactly once"
    assert await notices.dead_letters() == 0
    assert notify.running
    assert grpc_health_status(notify.address) == SERVING
    await notices.engine.dispose()


@pytest.mark.fault
async def test_a_database_outage_keeps_the_service_up_and_every_notice_goes_out_once_it_is_back(
    own_postgres_cluster: ThrowawayCluster,
    own_nats_server: NatsServer,
    publisher: Client,
    smtp: SmtpSink,
    config_dir: Path,
    service_process_factory: ServiceFactory,
) -> None:
    database_url = own_postgres_cluster.server.create_database("notify")
    notify = service_process_factory(
        "notify", "services.notify", notify_env(database_url, own_nats_server.url, smtp, config_dir)
    )
    notices = Notices(database_url)
    before, during = tickets(2), tickets(4)
    for ticket in before:
        await submit(publisher, ticket)
    assert await eventually(lambda: notices.all_sent([t.number for t in before]), bool)

    own_postgres_cluster.stop()
    for ticket in during:
        await submit(publisher, ticket)
    assert await eventually(_health(notify), lambda s: s == NOT_SERVING, within=15) == NOT_SERVING
    await asyncio.sleep(4)  # the consumer keeps trying, and handing the events back
    assert notify.running, "an outage is no reason to exit"
    assert grpc_health_status(notify.address) == NOT_SERVING  # answered: readiness, not a dead pod

    own_postgres_cluster.start()
    assert await eventually(_health(notify), lambda s: s == SERVING, within=15) == SERVING
    numbers = [t.number for t in before + during]
    assert await eventually(lambda: notices.all_sent(numbers), bool, within=60), await notices.emails()
    received = copies(smtp.received)
    assert set(received) == set(await notices.emails())
    assert set(received.values()) == {1}
    assert await notices.dead_letters() == 0, "an outage is not the events' fault"
    await notices.engine.dispose()


def _now(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def fetch() -> bool:
        return check()

    return fetch


async def _len(items: list[Any]) -> int:
    return len(items)


def _health(service: ServiceProcess) -> Callable[[], Awaitable[int | None]]:
    async def fetch() -> int | None:
        with contextlib.suppress(Exception):
            return await asyncio.to_thread(grpc_health_status, service.address)
        return None

    return fetch
