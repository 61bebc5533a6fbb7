"""Chat robots' rate limits (DingTalk and WeCom take 20 messages a minute; DingTalk refuses all for
ten minutes past that): notify sends a robot no more than its `max_per_minute` in any 60 seconds,
counted across replicas, and holds the rest back unsent, without using an attempt, until the
robot takes more. Other robots and e-mail are not held up."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.aio.client import Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from supportflow.common.v1 import types_pb2
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.kit.db import create_engine, stored_utc
from services.kit.migrate import upgrade
from services.notify.adapters import tables
from services.notify.adapters.sql_store import SqlDeliveryStore, SqlRecordStore
from services.notify.application.ports import NewNotification
from services.notify.bootstrap import MIGRATIONS, Notify
from services.notify.domain.delivery import Status
from tests.notify.conftest import MovableClock, auth
from tests.notify.sinks import HttpSink, SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number, until

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
LEASE = timedelta(hours=1)  # the test records no outcomes: what it claimed stays claimed
LIMITS = {("acme", "ops"): 4, ("acme", "dev"): 5, ("acme", "own"): 0}
ROBOT = "/dingtalk/robot/send"
OPERATIONS = {"team": "运维团队 Operations", "groups": ["operations"]}


def limit_of(org: str, hook: str) -> int:
    return LIMITS[(org, hook)]


def notice(number: int, webhook: str) -> NewNotification:
    return NewNotification(
        notification_id=f"n-{webhook}-{number:02}",
        notice_key=f"k-{webhook}-{number:02}",
        organization="acme",
        ticket_number=f"TS20260302{number:06}",
        event_id=f"e-{number}",
        event_type="ticket.classified",
        recipient=f"webhook:{webhook}",
        channel="webhook",
        template="new_task",
        locale="zh-CN",
        subject="",
        body="P0",
        payload=b"{}",
        webhook=webhook,
        status=Status.PENDING,
        # One a second before NOW, oldest first: the order claims take them in.
        next_attempt_at=NOW - timedelta(seconds=100 - number),
        last_error="",
        created_at=NOW - timedelta(minutes=5),
        sent_at=None,
    )


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """PostgreSQL, and the embedded default (SQLite: one writer at a time, BEGIN IMMEDIATE)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("fresh_database_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}"
    engine = create_engine(url, pool_size=12)
    await upgrade(engine, MIGRATIONS, "notify")
    yield engine
    await engine.dispose()


async def waiting(engine: AsyncEngine, webhook: str) -> list[tuple[str, datetime | None, int]]:
    n = tables.notifications
    query = select(n.c.notification_id, n.c.next_attempt_at, n.c.attempts).where(n.c.webhook == webhook)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(n.c.notification_id))).all()
    return [(r.notification_id, stored_utc(r.next_attempt_at), r.attempts) for r in rows]


async def test_replicas_claiming_together_never_give_a_robot_more_than_its_limit(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        added = [notice(i, "ops") for i in range(12)] + [notice(i, "dev") for i in range(3)]
        added += [notice(i, "own") for i in range(6)]
        await SqlRecordStore(conn).add_notifications(added)
    # Eight claimers at once, each on its own connection, as eight replicas' sender loops.
    stores = [SqlDeliveryStore(engine) for _ in range(8)]

    async def claim_all(at: datetime) -> Counter[str]:
        rounds = await asyncio.gather(*(s.claim_due("webhook", at, at + LEASE, 3, limit_of) for s in stores))
        return Counter(item.webhook or "" for claimed in rounds for item in claimed)

    assert await claim_all(NOW) == {"ops": 4, "dev": 3, "own": 6}
    ops = await waiting(engine, "ops")
    claimed = [nid for nid, due, _ in ops if due == NOW + LEASE]
    held = [nid for nid, due, _ in ops if due == NOW + timedelta(minutes=1)]
    assert (len(claimed), len(held)) == (4, 8), ops
    assert all(attempts == 0 for *_, attempts in ops), "held back is not an attempt"

    # Not a moment before the window has room again…
    assert await claim_all(NOW + timedelta(seconds=59)) == {}
    # …and then the limit again, however many replicas ask.
    assert await claim_all(NOW + timedelta(minutes=1)) == {"ops": 4}
    assert await claim_all(NOW + timedelta(minutes=2)) == {"ops": 4}
    assert await claim_all(NOW + timedelta(minutes=3)) == {}


async def test_a_robot_over_its_limit_gets_the_rest_a_minute_later_while_mail_flows(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    clock: MovableClock,
    config_dir: Path,
) -> None:
    # The process admin gives ACME's operations robot a limit of 2 a minute (the shipped 20 would
    # take 21 tickets to show); the running service picks the file up.
    directory = config_dir / "directory.toml"
    text = directory.read_text()
    directory.write_text(
        re.sub(r"(\[orgs\.acme\.webhooks\.acme-ops-dingtalk\]\n)", r"\1max_per_minute = 2\n", text, count=1)
    )
    await until(lambda: asyncio.sleep(0, notify.config.reloads), lambda n: n >= 1)
    assert notify.config.max_per_minute("acme", "acme-ops-dingtalk") == 2

    # Three P0 tickets in the operations team: each posts to the team's robot (rules.toml).
    tickets = [Ticket(ticket_number(), clock.now) for _ in range(3)]
    for ticket in tickets:
        await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    for ticket in tickets:
        assert len(await smtp.wait_for(ticket.number, 1)) == 1, "e-mail is not held up"
    assert len(await http.wait_for(ROBOT, 2)) == 2
    await asyncio.sleep(0.3)  # the webhook loop looks every 0.05 s
    assert len(http.to(ROBOT)) == 2

    async def robot_notices() -> list[pb.Notification]:
        found = []
        for ticket in tickets:
            request = pb.ListNotificationsRequest(ticket_number=ticket.number, channel=pb.CHANNEL_WEBHOOK)
            found += (await stub.ListNotifications(request, metadata=auth())).notifications
        return found

    notices = await until(robot_notices, lambda found: sum(n.status == pb.DELIVERY_STATUS_SENT for n in found) == 2)
    (held,) = [n for n in notices if n.status != pb.DELIVERY_STATUS_SENT]
    assert held.status == pb.DELIVERY_STATUS_PENDING
    assert (held.attempts, held.last_error) == (0, ""), "held back is not a failed attempt"
    assert held.next_attempt_at.ToDatetime(tzinfo=UTC) == clock.now() + timedelta(minutes=1)

    clock.advance(timedelta(seconds=59))
    await asyncio.sleep(0.3)
    assert len(http.to(ROBOT)) == 2
    clock.advance(timedelta(seconds=1))
    assert len(await http.wait_for(ROBOT, 3)) == 3
    sent = await until(robot_notices, lambda found: all(n.status == pb.DELIVERY_STATUS_SENT for n in found))
    assert [n.attempts for n in sent] == [1, 1, 1]
