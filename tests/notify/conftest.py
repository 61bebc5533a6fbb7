"""The notify service under test: the real service in this process on real PostgreSQL and NATS
JetStream, called over a real gRPC socket, sending to a real SMTP server and a real HTTP server,
its configuration a copy of bpmn/notify/ the test may edit, its time a clock the test moves."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncConnection
from supportflow.events.v1 import events_pb2
from supportflow.notify.v1 import notify_pb2_grpc

from services.kit.auth import mint_token
from services.kit.consumer import DurableConsumer
from services.kit.db import create_engine
from services.kit.messaging import NatsConnection
from services.kit.migrate import upgrade
from services.notify.adapters import tables
from services.notify.bootstrap import DURABLE, MIGRATIONS, Notify, bootstrap
from services.notify.entrypoints import events
from services.notify.settings import NotifySettings
from tests.notify.sinks import HttpSink, SmtpSink
from tests.notify.story import NOTIFY_DIR
from tests.notify.stream_side import STREAM, until

SECRET = "test-secret-for-supportflow-tests-0123456789"
MAIL_DOMAIN = "support.acme.example"
DINGTALK_SECRET = "SEC0123456789abcdef"
#: Attempts before dead in these tests: after 30 s (±20 %), then 2 min (±20 %), then dead.
MAX_ATTEMPTS = 3


class MovableClock:
    """The service's clock: starts at a fixed Monday morning and moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> None:
        self.current += by


def token(
    sub: str = "agent-1", org: str = "acme", roles: tuple[str, ...] = ("agent",), groups: tuple[str, ...] = ()
) -> str:
    return mint_token(secret=SECRET, subject=sub, org=org, roles=roles, groups=groups)


def auth(sub: str = "agent-1", org: str = "acme", roles: tuple[str, ...] = ("agent",)) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(sub, org, roles)}"),)


def notify_settings(
    database_url: str, nats_url: str, smtp: SmtpSink, config_dir: Path, **overrides: Any
) -> NotifySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "nats_url": nats_url,
        "jwt_secret": SECRET,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "config_dir": config_dir,
        "config_poll_seconds": 0.05,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "mail_domain": MAIL_DOMAIN,
        "send_timeout_seconds": 5.0,
        "max_attempts": MAX_ATTEMPTS,
        "sender_poll_seconds": 0.05,
    }
    return NotifySettings(**{**values, **overrides})


def webhook_env(http: HttpSink) -> dict[str, str]:
    """The robots of bpmn/notify/directory.toml, pointed at the HTTP sink (with their credentials)."""
    return {
        "NOTIFY_ACME_OPS_DINGTALK_URL": http.url("/dingtalk/robot/send?access_token=ops-token-123"),
        "NOTIFY_ACME_OPS_DINGTALK_SECRET": DINGTALK_SECRET,
        "NOTIFY_ACME_DEV_WECOM_URL": http.url("/wecom/webhook/send?key=dev-key-456"),
    }


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    sink = HttpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped configuration, for the test to edit while the service runs."""
    target = tmp_path / "notify"
    shutil.copytree(NOTIFY_DIR, target)
    return target


@pytest.fixture(scope="session")
async def caught_up(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip what other suites left on the session's stream (intake's tests publish thousands of
    events) once, before the first notify service starts: notify's durable consumer starts at the
    stream's beginning, and a backlog would delay the first test's events past its deadlines. The
    kit's own consumer does it (with a handler that records nothing), so its settings are notify's."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('catch-up') / 'notify.db'}")
    await upgrade(engine, MIGRATIONS, "notify")
    connection = NatsConnection(nats_url, name="notify-tests-catch-up", stream=STREAM, duplicate_window_seconds=900.0)
    connection.start()

    async def skip(conn: AsyncConnection, event: events_pb2.Event) -> None:
        pass

    consumer = DurableConsumer(
        connection,
        engine,
        durable=DURABLE,
        filter_subjects=events.SUBJECTS,
        handler=skip,
        processed=tables.processed_events,
        dead_letters=tables.dead_letters,
        batch=256,
    )
    running = asyncio.create_task(consumer.run())
    js = await connection.jetstream()
    last = (await js.stream_info(STREAM)).state.last_seq

    async def floor() -> int:
        try:
            return int((await js.consumer_info(STREAM, DURABLE)).ack_floor.stream_seq or 0)
        except NotFoundError:
            return 0

    await until(floor, lambda seq: seq >= last, within=300)
    consumer.stop()
    await running
    await connection.close()
    await engine.dispose()


@pytest.fixture
async def notify(
    caught_up: None,
    fresh_database_url: str,
    nats_url: str,
    clock: MovableClock,
    smtp: SmtpSink,
    http: HttpSink,
    config_dir: Path,
) -> AsyncIterator[Notify]:
    service = bootstrap(
        notify_settings(fresh_database_url, nats_url, smtp, config_dir),
        env=webhook_env(http),
        clock=clock,
        rng=random.Random(4),
    )
    await service.start()
    yield service
    await service.host.shutdown()


@pytest.fixture
async def stub(notify: Notify) -> AsyncIterator[notify_pb2_grpc.NotifyServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{notify.host.port}") as channel:
        yield notify_pb2_grpc.NotifyServiceStub(channel)


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
