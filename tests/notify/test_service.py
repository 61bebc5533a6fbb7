"""The notify service end to end: events published on the stream as intake and workflow publish
them, e-mails arriving at a real SMTP server, notices listed over gRPC — what the requester, the
agents and the change manager would see."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.kit.runtime import UuidIds
from services.notify.adapters.composer import WireComposer
from services.notify.adapters.event_codec import decode
from services.notify.adapters.sql_store import SqlRecordStore
from services.notify.application.recording import record_event
from services.notify.bootstrap import Notify
from tests.notify.conftest import MAIL_DOMAIN, MovableClock, auth
from tests.notify.sinks import SmtpSink
from tests.notify.stream_side import (
    CHANGE_MANAGER,
    LEAD,
    TITLE,
    Ticket,
    consumed,
    publish,
    ticket_number,
    until,
)


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def listed(
    stub: notify_pb2_grpc.NotifyServiceStub, who: tuple[tuple[str, str], ...] | None = None, **fields: object
) -> list[pb.Notification]:
    response = await stub.ListNotifications(pb.ListNotificationsRequest(**fields), metadata=who or auth())  # type: ignore[arg-type]
    return list(response.notifications)


async def test_the_requester_gets_the_receipt_in_chinese_with_the_expected_response_time(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P1))

    (mail,) = await smtp.wait_for(ticket.number, 1)
    assert mail["To"] == "李雷 <li.lei@acme.example>"
    assert mail["From"] == "ACME 技术支持 <support@acme.example>"
    assert mail["Subject"] == f"【技术支持】{ticket.number}号 {TITLE}"
    assert mail["Content-Language"] == "zh-CN"
    text = text_of(mail)
    assert text.startswith("您好，您的服务单已受理")
    assert f"服务单号：{ticket.number}" in text
    assert "预计响应时间：2 小时内（工作时间）" in text
    assert smtp.received[-1].rcpt_tos == ("li.lei@acme.example",)

    # …and the same receipt in their in-app inbox, delivered by being stored.
    inbox = await listed(stub, auth("E1001", roles=("requester",)), ticket_number=ticket.number)
    assert [(n.channel, n.template, n.status, n.locale) for n in inbox] == [
        (pb.CHANNEL_IN_APP, "receipt", pb.DELIVERY_STATUS_SENT, "zh-CN")
    ]
    assert inbox[0].recipient == "E1001"
    assert inbox[0].subject == mail["Subject"]
    assert inbox[0].HasField("sent_at")


async def test_english_readers_get_english(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    # ACME writes Chinese, but its change manager reads English (directory.toml: locale = "en").
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(), ticket.assigned(), ticket.approval_requested())
    mails = await smtp.wait_for(ticket.number, 3)
    by_reader = {m["To"].addresses[0].addr_spec: m for m in mails}
    approval = by_reader["maria.schmidt@acme.example"]
    assert approval["Content-Language"] == "en"
    assert approval["Subject"] == f"[Support] {ticket.number} {TITLE}"
    assert "approv" in text_of(approval).lower()
    assert by_reader["li.lei@acme.example"]["Content-Language"] == "zh-CN"

    # Globex writes English to everybody (its directory entry: locale = "en").
    globex = Ticket(ticket_number(), clock.now, org="globex")
    await publish(nc, globex.submitted(requester="gx-1001", name="Homer", email="homer@globex.example"))
    await publish(nc, globex.classified())
    (receipt,) = await smtp.wait_for(globex.number, 1)
    assert receipt["To"] == "Homer <homer@globex.example>"
    assert receipt["From"] == "Globex IT Support <support@globex.example>"
    assert text_of(receipt).startswith("Hello, we have received your ticket")
    assert "Expected response: within 2 hours (working hours)" in text_of(receipt)


async def test_the_mails_of_one_ticket_form_one_thread(
    notify: Notify, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(), ticket.assigned("agent-1", ["engineer-2"]))
    await publish(nc, ticket.resolved())
    mails = await smtp.wait_for(ticket.number, 4)
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == [
        "li.lei@acme.example",  # receipt
        "li.lei@acme.example",  # result notice
        "wang.fang@acme.example",  # assignment
        "zhang.wei@acme.example",  # co-handler
    ]
    root = f"<ticket-{ticket.number}@{MAIL_DOMAIN}>"
    assert {m["References"] for m in mails} == {root}
    assert {m["In-Reply-To"] for m in mails} == {root}
    assert len({m["Message-ID"] for m in mails}) == 4
    assert all(m["Message-ID"].endswith(f"@{MAIL_DOMAIN}>") for m in mails)
    assert {m["Subject"] for m in mails} == {f"【技术支持】{ticket.number}号 {TITLE}"}


async def test_the_handler_hears_the_change_and_review_decisions_whoever_claimed_those_tasks(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    # agent-1 (王芳) handles the ticket. The change manager claims the approval and rejects the
    # plan; the reviewer claims the review and passes the operation. Workflow publishes the claims
    # as theirs and the decisions as its own (the throws after the completed tasks).
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(), ticket.classified(), ticket.assigned("agent-1"), ticket.approval_requested())
    await publish(
        nc,
        ticket.claimed("t5", "Task_ApproveChange", CHANGE_MANAGER),
        ticket.change_decided(approved=False, approver="cm-1"),
        ticket.review_requested(),
        ticket.claimed("t7", "Task_ReviewKeyOperation", LEAD),
        ticket.review_decided(approved=True, reviewer="lead-1"),
    )
    mails = await smtp.wait_for(ticket.number, 6)
    received = sorted((m["To"].addresses[0].addr_spec, text_of(m).splitlines()[0]) for m in mails)
    n = ticket.number
    assert received == [
        ("chen.jing@acme.example", f"陈静，您好：服务单 {n} 的一项关键操作需要双人复核。"),
        ("li.lei@acme.example", "您好，您的服务单已受理，我们会尽快处理。"),
        ("maria.schmidt@acme.example", f"Hello Maria Schmidt, a production change on ticket {n} awaits your approval."),
        ("wang.fang@acme.example", "王芳，您好：以下服务单已分派给您，请及时处理。"),
        ("wang.fang@acme.example", f"王芳，您好：服务单 {n} 的关键操作复核已通过。"),
        ("wang.fang@acme.example", f"王芳，您好：服务单 {n} 的变更方案被驳回，请修改后重新提交。"),
    ], "the handler hears both decisions; the change manager and the reviewer only what asked for them"

    # In the inboxes: the decisions are the handler's; the change manager and the reviewer have
    # only the requests that asked for them.
    decisions = await until(
        lambda: listed(stub, ticket_number=ticket.number, channel=pb.CHANNEL_IN_APP),
        lambda found: sum(n.template.endswith("_decision") for n in found) == 2,
    )
    assert sorted((n.template, n.recipient) for n in decisions if n.template.endswith("_decision")) == [
        ("approval_decision", "agent-1"),
        ("review_decision", "agent-1"),
    ]
    assert sorted((n.template, n.recipient) for n in decisions if n.recipient in ("cm-1", "lead-1")) == [
        ("approval_request", "cm-1"),
        ("review_request", "lead-1"),
    ]


async def test_redelivered_events_send_nothing_twice(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    ticket = Ticket(ticket_number(), clock.now)
    events = [ticket.submitted(), ticket.classified(), ticket.assigned("agent-1", ["engineer-2"])]
    await publish(nc, *events)
    mails = await smtp.wait_for(ticket.number, 3)
    assert len(mails) == 3
    # A mail reaches the sink a moment before its notice is recorded as sent: wait for all six.
    before = await until(
        lambda: listed(stub, ticket_number=ticket.number),
        lambda found: len(found) == 6 and all(n.status == pb.DELIVERY_STATUS_SENT for n in found),
    )
    assert len(before) == 6  # 3 e-mails, 3 in-app notices

    # The same events again, as a producer's relay would resend them after a crash: same event ids,
    # new Nats-Msg-Ids (so JetStream's duplicate window does not drop them).
    last = await publish(nc, *events, msg_id=lambda e: f"{e.event_id}-again")
    await consumed(nc, last)

    async def sent_mails() -> list[EmailMessage]:
        return smtp.for_ticket(ticket.number)

    await until(sent_mails, lambda found: len(found) > 3, within=0.5)  # give a wrong resend its chance
    assert len(smtp.for_ticket(ticket.number)) == 3
    after = await listed(stub, ticket_number=ticket.number)
    assert [(n.notification_id, n.status) for n in after] == [(n.notification_id, n.status) for n in before]

    # Even recorded again past the consumer's processed-events table, an event adds no notice:
    # each (event, recipient, channel) is stored once.
    async with notify.engine.begin() as conn:
        again = await record_event(
            SqlRecordStore(conn),
            notify.config.current,
            decode(events[2]),
            now=clock.now(),
            ids=UuidIds(),
            composer=WireComposer(MAIL_DOMAIN),
        )
    assert again.duplicates == 4  # assignee and co-handler, e-mail and in-app
    assert not again.added
    assert len(await listed(stub, ticket_number=ticket.number)) == 6


async def test_the_assignee_finds_in_app_notices_in_the_inbox_page_by_page(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    first, second = Ticket(ticket_number(), clock.now), Ticket(ticket_number(), clock.now)
    await publish(nc, first.submitted(), first.classified(), first.assigned("agent-1"))
    await smtp.wait_for(first.number, 2)
    clock.advance(timedelta(minutes=5))
    await publish(nc, second.submitted(), second.classified(), second.assigned("agent-1"))
    await smtp.wait_for(second.number, 2)
    me = auth("agent-1", roles=("agent",))

    async def inbox() -> list[pb.Notification]:
        return await listed(stub, me, recipient="agent-1", channel=pb.CHANNEL_IN_APP)

    found = await until(inbox, lambda found: len(found) >= 2)
    mine = [n for n in found if n.ticket_number in (first.number, second.number)]
    assert [(n.ticket_number, n.template, n.status) for n in mine] == [
        (second.number, "assignment", pb.DELIVERY_STATUS_SENT),  # newest first
        (first.number, "assignment", pb.DELIVERY_STATUS_SENT),
    ]
    assert "王芳" in mine[0].body or second.number in mine[0].body

    page = await stub.ListNotifications(
        pb.ListNotificationsRequest(recipient="agent-1", statuses=[pb.DELIVERY_STATUS_SENT], page_size=1), metadata=me
    )
    assert len(page.notifications) == 1
    assert page.next_page_token
    rest = await stub.ListNotifications(
        pb.ListNotificationsRequest(
            recipient="agent-1", statuses=[pb.DELIVERY_STATUS_SENT], page_size=1, page_token=page.next_page_token
        ),
        metadata=me,
    )
    assert [n.notification_id for n in rest.notifications] != [n.notification_id for n in page.notifications]
    assert (rest.notifications[0].created_at.ToDatetime(), rest.notifications[0].notification_id) <= (
        page.notifications[0].created_at.ToDatetime(),
        page.notifications[0].notification_id,
    )


async def test_a_mailbox_the_server_refuses_for_good_is_dead_at_once_and_a_busy_one_is_retried(
    notify: Notify, stub: notify_pb2_grpc.NotifyServiceStub, nc: Client, smtp: SmtpSink, clock: MovableClock
) -> None:
    refused, busy = Ticket(ticket_number(), clock.now), Ticket(ticket_number(), clock.now)
    smtp.replies["RCPT"].append("550 5.1.1 <li.lei@acme.example>: no such user")
    await publish(nc, refused.submitted(), refused.classified())

    async def mail(ticket: Ticket) -> pb.Notification:
        found = await listed(stub, ticket_number=ticket.number, channel=pb.CHANNEL_EMAIL)
        return found[0] if found else pb.Notification()

    dead = await until(lambda: mail(refused), lambda n: n.attempts == 1)
    assert (dead.status, dead.attempts) == (pb.DELIVERY_STATUS_DEAD, 1), "a 5xx is not retried"
    assert "550 5.1.1 <li.lei@acme.example>: no such user (permanent: not retried)" in dead.last_error

    smtp.replies["RCPT"].append("452 4.2.2 mailbox full, try again later")
    await publish(nc, busy.submitted(), busy.classified())
    waiting = await until(lambda: mail(busy), lambda n: n.attempts == 1)
    assert (waiting.status, waiting.attempts) == (pb.DELIVERY_STATUS_RETRYING, 1), "a 4xx is tried again"
    assert smtp.for_ticket(refused.number) == smtp.for_ticket(busy.number) == []
