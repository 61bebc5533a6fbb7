"""The embedded default (`supportflow up`): notify on SQLite stores, sends, retries and lists."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import grpc
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.notify.bootstrap import bootstrap
from services.notify.domain.retry import RetryPolicy
from tests.notify.conftest import MAX_ATTEMPTS, MovableClock, auth, notify_settings, webhook_env
from tests.notify.sinks import HttpSink, SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number, until


async def test_notify_runs_on_sqlite(
    caught_up: None,
    sqlite_url: str,
    nats_url: str,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    clock: MovableClock,
    config_dir: Path,
) -> None:
    service = bootstrap(
        notify_settings(sqlite_url, nats_url, smtp, config_dir),
        env=webhook_env(http),
        clock=clock,
        rng=random.Random(2),
    )
    await service.start()
    try:
        http.script.append((503, b"busy"))
        ticket = Ticket(ticket_number(), clock.now)
        await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, team="运维团队 Operations"))
        assert len(await smtp.wait_for(ticket.number, 1)) == 1
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.host.port}") as channel:
            stub = notify_pb2_grpc.NotifyServiceStub(channel)

            async def robot() -> pb.Notification:
                found = await stub.ListNotifications(
                    pb.ListNotificationsRequest(ticket_number=ticket.number, channel=pb.CHANNEL_WEBHOOK),
                    metadata=auth(),
                )
                return found.notifications[0] if found.notifications else pb.Notification()

            notice = await until(robot, lambda n: n.attempts == 1)
            assert notice.status == pb.DELIVERY_STATUS_RETRYING
            assert "HTTP 503: busy" in notice.last_error
            clock.advance(RetryPolicy(max_attempts=MAX_ATTEMPTS).bounds(1)[1] + timedelta(seconds=1))
            notice = await until(robot, lambda n: n.status == pb.DELIVERY_STATUS_SENT)
            assert notice.status == pb.DELIVERY_STATUS_SENT
            assert [a.succeeded for a in notice.attempt_log] == [False, True]

            listed = await stub.ListNotifications(
                pb.ListNotificationsRequest(ticket_number=ticket.number, page_size=2), metadata=auth()
            )
            rest = await stub.ListNotifications(
                pb.ListNotificationsRequest(
                    ticket_number=ticket.number, page_size=2, page_token=listed.next_page_token
                ),
                metadata=auth(),
            )
            ids = [n.notification_id for n in (*listed.notifications, *rest.notifications)]
            assert len(ids) == len(set(ids)) == 3  # e-mail, in-app, webhook
    finally:
        await service.host.shutdown()
