"""Who sees which notifications: agents their organisation's, a requester only their own in-app
notices, nobody another organisation's; only agents and team leads send one again."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from nats.aio.client import Client
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.notify.bootstrap import Notify
from tests.notify.conftest import MovableClock, auth
from tests.notify.sinks import SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number

#: The requester of this module's tickets: an id of its own, so that no other ticket's notices
#: (other tests publish for E1001) show in their inbox.
REQUESTER_ID = f"E{uuid.uuid4().int % 10**8:08d}"
REQUESTER = auth(REQUESTER_ID, roles=("requester",))


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    trailer = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(trailer)  # type: ignore[arg-type]
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


@pytest.fixture
async def ticket(notify: Notify, nc: Client, smtp: SmtpSink, clock: MovableClock) -> Ticket:
    """A classified ticket assigned to agent-1: e-mails and in-app notices for its requester and agent-1."""
    ticket = Ticket(ticket_number(), clock.now)
    await publish(nc, ticket.submitted(requester=REQUESTER_ID), ticket.classified(), ticket.assigned("agent-1"))
    await smtp.wait_for(ticket.number, 2)
    return ticket


async def test_a_requester_sees_only_their_own_in_app_notices(
    stub: notify_pb2_grpc.NotifyServiceStub, ticket: Ticket
) -> None:
    every = await stub.ListNotifications(pb.ListNotificationsRequest(ticket_number=ticket.number), metadata=auth())
    assert {(n.recipient, n.channel) for n in every.notifications} == {
        ("li.lei@acme.example", pb.CHANNEL_EMAIL),
        (REQUESTER_ID, pb.CHANNEL_IN_APP),
        ("wang.fang@acme.example", pb.CHANNEL_EMAIL),
        ("agent-1", pb.CHANNEL_IN_APP),
    }

    own = await stub.ListNotifications(pb.ListNotificationsRequest(ticket_number=ticket.number), metadata=REQUESTER)
    assert [(n.recipient, n.channel, n.template) for n in own.notifications] == [
        (REQUESTER_ID, pb.CHANNEL_IN_APP, "receipt")
    ]
    inbox = await stub.ListNotifications(pb.ListNotificationsRequest(), metadata=REQUESTER)
    assert [n.ticket_number for n in inbox.notifications] == [ticket.number]

    for request in (
        pb.ListNotificationsRequest(ticket_number=ticket.number, recipient="agent-1"),
        pb.ListNotificationsRequest(ticket_number=ticket.number, channel=pb.CHANNEL_EMAIL),
    ):
        error = await failure(stub.ListNotifications(request, metadata=REQUESTER))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_nobody_sees_another_organisations_notifications(
    stub: notify_pb2_grpc.NotifyServiceStub, ticket: Ticket
) -> None:
    globex_agent = auth("gx-agent", org="globex", roles=("agent",))
    error = await failure(
        stub.ListNotifications(
            pb.ListNotificationsRequest(organization="acme", ticket_number=ticket.number), metadata=globex_agent
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    theirs = await stub.ListNotifications(
        pb.ListNotificationsRequest(ticket_number=ticket.number), metadata=globex_agent
    )
    assert list(theirs.notifications) == []

    mine = await stub.ListNotifications(pb.ListNotificationsRequest(ticket_number=ticket.number), metadata=auth())
    error = await failure(
        stub.RetryNotification(
            pb.RetryNotificationRequest(notification_id=mine.notifications[0].notification_id), metadata=globex_agent
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_requests_are_refused_naming_the_field(
    stub: notify_pb2_grpc.NotifyServiceStub, ticket: Ticket
) -> None:
    error = await failure(stub.ListNotifications(pb.ListNotificationsRequest(), metadata=auth()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["ticket_number", "recipient", "statuses"]
    error = await failure(
        stub.ListNotifications(
            pb.ListNotificationsRequest(ticket_number=ticket.number, page_token="x"), metadata=auth()
        )
    )
    assert violations(error) == ["page_token"]
    error = await failure(
        stub.ListNotifications(pb.ListNotificationsRequest(ticket_number=ticket.number, page_size=501), metadata=auth())
    )
    assert violations(error) == ["page_size"]

    error = await failure(stub.ListNotifications(pb.ListNotificationsRequest(ticket_number=ticket.number)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    error = await failure(stub.RetryNotification(pb.RetryNotificationRequest(notification_id="nope"), metadata=auth()))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await failure(stub.RetryNotification(pb.RetryNotificationRequest(), metadata=auth()))
    assert violations(error) == ["notification_id"]

    in_app = await stub.ListNotifications(
        pb.ListNotificationsRequest(ticket_number=ticket.number, channel=pb.CHANNEL_IN_APP), metadata=auth()
    )
    error = await failure(
        stub.RetryNotification(
            pb.RetryNotificationRequest(notification_id=in_app.notifications[0].notification_id), metadata=auth()
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
