"""A chat robot that fails for now (busy): notify tries again with growing waits (driven by the
test's clock, not by sleeping), gives up after the last attempt with the robot's own words as the
reason, and sends it when an agent asks again — while e-mail keeps flowing all along. A robot that
refuses the message for good (its signature check) is dead at once; one that is rate-limited is
asked again only after the wait it named. A robot that hangs holds up no e-mail either."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import timedelta

import grpc
import pytest
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.notify.bootstrap import Notify
from services.notify.domain.retry import RetryPolicy
from tests.notify.conftest import DINGTALK_SECRET, MAX_ATTEMPTS, MovableClock, auth
from tests.notify.sinks import HttpSink, SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number, until

ROBOT = "/dingtalk/robot/send"
BUSY = (200, '{"errcode":-1,"errmsg":"系统繁忙"}'.encode())
REFUSED = (200, b'{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/]"}')
POLICY = RetryPolicy(max_attempts=MAX_ATTEMPTS)
OPERATIONS = {"team": "运维团队 Operations", "groups": ["operations"]}


async def robot_notice(stub: notify_pb2_grpc.NotifyServiceStub, number: str) -> pb.Notification:
    response = await stub.ListNotifications(
        pb.ListNotificationsRequest(ticket_number=number, channel=pb.CHANNEL_WEBHOOK), metadata=auth()
    )
    (notice,) = response.notifications
    return notice


def sample(notify: Notify, name: str, channel: str) -> float:
    value = notify.metrics.registry.get_sample_value(f"supportflow_notify_{name}", {"channel": channel})
    return value or 0.0


async def quiet(http: HttpSink, count: int) -> None:
    """Give the webhook loop a few rounds (it looks every 0.05 s); it must not call the robot again."""
    await asyncio.sleep(0.3)
    assert len(http.to(ROBOT)) == count


async def test_a_busy_robot_is_retried_with_backoff_then_dead_then_sent_on_request_while_mail_flows(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    clock: MovableClock,
) -> None:
    http.always = BUSY
    ticket = Ticket(ticket_number(), clock.now)
    # A P0 lands in the routed team's DingTalk group at once (rules.toml), and the receipt goes out.
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    (first,) = await http.wait_for(ROBOT, 1)
    assert first.json["msgtype"] == "markdown"
    assert first.query["access_token"] == ["ops-token-123"]
    # DingTalk's 加签, computed here from its documentation: HMAC-SHA256(secret, "<ms>\n<secret>"), base64.
    timestamp = first.query["timestamp"][0]
    assert int(timestamp) == int(clock.now().timestamp() * 1000)
    expected = hmac.new(DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256)
    assert first.query["sign"] == [base64.b64encode(expected.digest()).decode()]
    assert len(await smtp.wait_for(ticket.number, 1)) == 1

    failed_at = clock.now()
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.attempts == 1)
    assert notice.status == pb.DELIVERY_STATUS_RETRYING
    assert "dingtalk errcode -1: 系统繁忙" in notice.last_error
    assert "ops-token-123" not in notice.last_error  # the robot's credential stays out of sight
    low, high = POLICY.bounds(1)
    due = notice.next_attempt_at.ToDatetime().replace(tzinfo=failed_at.tzinfo)
    assert failed_at + low <= due <= failed_at + high

    # Not before it is due…
    clock.advance(low - timedelta(seconds=1))
    await quiet(http, 1)
    # …while other tickets' e-mails go out.
    other = Ticket(ticket_number(), clock.now)
    await publish(nc, other.submitted(), other.classified(types_pb2.PRIORITY_P2))
    assert len(await smtp.wait_for(other.number, 1)) == 1

    # Once due, the second attempt; then the third after the longer wait: the last one.
    clock.current = due + timedelta(seconds=1)
    await http.wait_for(ROBOT, 2)
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.attempts == 2)
    second_due = notice.next_attempt_at.ToDatetime().replace(tzinfo=failed_at.tzinfo)
    low2, high2 = POLICY.bounds(2)
    assert clock.now() + low2 <= second_due <= clock.now() + high2
    assert low2 > high  # the waits grow

    late = Ticket(ticket_number(), clock.now)
    await publish(nc, late.submitted(), late.classified(types_pb2.PRIORITY_P2))
    assert len(await smtp.wait_for(late.number, 1)) == 1

    clock.current = second_due + timedelta(seconds=1)
    await http.wait_for(ROBOT, 3)
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_DEAD)
    assert notice.status == pb.DELIVERY_STATUS_DEAD
    assert notice.attempts == MAX_ATTEMPTS
    assert "dingtalk errcode -1: 系统繁忙" in notice.last_error
    assert not notice.HasField("next_attempt_at")
    assert [a.succeeded for a in notice.attempt_log] == [False, False, False]
    assert sample(notify, "notifications_dead_total", "webhook") == 1
    # An operator finds every dead notice of the organisation without knowing the tickets.
    dead = await stub.ListNotifications(
        pb.ListNotificationsRequest(statuses=[pb.DELIVERY_STATUS_DEAD]), metadata=auth("lead-1", roles=("team_lead",))
    )
    assert notice.notification_id in [n.notification_id for n in dead.notifications]
    assert {n.status for n in dead.notifications} == {pb.DELIVERY_STATUS_DEAD}

    clock.advance(timedelta(days=1))  # dead stays dead
    await quiet(http, 3)

    # The robot is fixed; a requester may not resend, an agent may.
    http.always = None
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.RetryNotification(
            pb.RetryNotificationRequest(notification_id=notice.notification_id),
            metadata=auth("E1001", roles=("requester",)),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    again = await stub.RetryNotification(
        pb.RetryNotificationRequest(notification_id=notice.notification_id),
        metadata=auth("lead-1", roles=("team_lead",)),
    )
    assert again.status in (pb.DELIVERY_STATUS_PENDING, pb.DELIVERY_STATUS_SENT)
    assert again.attempts in (0, 1)
    await http.wait_for(ROBOT, 4)
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_SENT)
    assert notice.status == pb.DELIVERY_STATUS_SENT
    assert notice.attempts == 1
    assert [a.succeeded for a in notice.attempt_log] == [False, False, False, True]
    assert notice.HasField("sent_at")
    assert sample(notify, "notifications_sent_total", "webhook") == 1
    assert sample(notify, "send_failures_total", "webhook") == 3
    assert sample(notify, "notifications_sent_total", "email") >= 3
    assert sample(notify, "notifications_dead_total", "email") == 0

    # Sent is sent: asking again is refused.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RetryNotification(
            pb.RetryNotificationRequest(notification_id=notice.notification_id), metadata=auth()
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_robot_refusing_for_good_is_dead_at_once_and_sent_when_an_agent_asks_again(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    clock: MovableClock,
) -> None:
    """DingTalk's 310000 (signature, keyword or IP allow-list): the robot's settings, not the
    moment — asking again later gets the same answer, so the notice is dead with the reason."""
    http.always = REFUSED
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    await http.wait_for(ROBOT, 1)
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_DEAD)
    assert (notice.status, notice.attempts) == (pb.DELIVERY_STATUS_DEAD, 1)
    assert notice.last_error.endswith(
        "dingtalk errcode 310000: sign not match, more: [https://ding-doc.dingtalk.com/] (permanent: not retried)"
    )
    assert "ops-token-123" not in notice.last_error
    assert not notice.HasField("next_attempt_at")
    assert sample(notify, "notifications_dead_total", "webhook") == 1
    assert len(await smtp.wait_for(ticket.number, 1)) == 1  # the receipt went out all the same

    clock.advance(timedelta(hours=3))  # well past every backoff: never asked again by itself
    await quiet(http, 1)

    http.always = None  # the robot's security settings are fixed
    await stub.RetryNotification(
        pb.RetryNotificationRequest(notification_id=notice.notification_id),
        metadata=auth("lead-1", roles=("team_lead",)),
    )
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_SENT)
    assert (notice.status, notice.attempts) == (pb.DELIVERY_STATUS_SENT, 1)
    assert [a.succeeded for a in notice.attempt_log] == [False, True]
    assert len(http.to(ROBOT)) == 2


async def test_a_rate_limited_receiver_is_asked_again_only_after_the_wait_it_named(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    http: HttpSink,
    clock: MovableClock,
) -> None:
    http.script.append((429, b"slow down", {"Retry-After": "900"}))
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    await http.wait_for(ROBOT, 1)
    failed_at = clock.now()
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.attempts == 1)
    assert notice.status == pb.DELIVERY_STATUS_RETRYING
    assert "HTTP 429: slow down (Retry-After 900 s)" in notice.last_error
    due = notice.next_attempt_at.ToDatetime().replace(tzinfo=failed_at.tzinfo)
    # Not the 30 s backoff: the 15 minutes asked for (spread upwards by the jitter only).
    assert failed_at + timedelta(minutes=15) <= due <= failed_at + timedelta(minutes=18)

    clock.current = failed_at + POLICY.bounds(1)[1] + timedelta(seconds=1)  # the backoff is over …
    await quiet(http, 1)  # … but not the wait the receiver named
    clock.current = due + timedelta(seconds=1)
    await http.wait_for(ROBOT, 2)
    notice = await until(lambda: robot_notice(stub, ticket.number), lambda n: n.status == pb.DELIVERY_STATUS_SENT)
    assert (notice.status, notice.attempts) == (pb.DELIVERY_STATUS_SENT, 2)


async def test_a_hanging_robot_holds_up_no_mail(
    notify: Notify,
    stub: notify_pb2_grpc.NotifyServiceStub,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    clock: MovableClock,
) -> None:
    http.gate.clear()  # the robot takes the request and does not answer
    urgent = Ticket(ticket_number(), clock.now)
    await publish(nc, urgent.submitted(), urgent.classified(types_pb2.PRIORITY_P0, **OPERATIONS))
    await http.wait_for(ROBOT, 1)
    assert http.waiting == 1

    others = [Ticket(ticket_number(), clock.now) for _ in range(3)]
    for other in others:
        await publish(nc, other.submitted(), other.classified(types_pb2.PRIORITY_P1))
    for other in others:
        assert len(await smtp.wait_for(other.number, 1)) == 1
    assert http.waiting == 1  # still hanging meanwhile

    http.gate.set()
    notice = await until(lambda: robot_notice(stub, urgent.number), lambda n: n.status == pb.DELIVERY_STATUS_SENT)
    assert notice.status == pb.DELIVERY_STATUS_SENT
    assert len(http.to(ROBOT)) == 1
