"""The NotifyService servicer: proto → query or command → use case → proto. Errors are mapped by
the kit's interceptor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from supportflow.notify.v1 import notify_pb2 as pb
from supportflow.notify.v1 import notify_pb2_grpc

from services.kit.auth import current_principal
from services.kit.errors import FieldViolation
from services.notify.application import inbox
from services.notify.application.ports import Clock, DeliveryStore, NotificationQuery
from services.notify.domain.errors import InvalidRequest
from services.notify.domain.rules import Channel
from services.notify.entrypoints import translate as tr

Context = grpc.aio.ServicerContext[object, object]
DEFAULT_PAGE, MAX_PAGE = 50, 500


@dataclass(frozen=True, slots=True)
class InboxDeps:
    store: DeliveryStore
    clock: Clock
    #: Tells the channel's sender loop to look now (after RetryNotification).
    wake: Callable[[Channel], None]


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, deps: InboxDeps) -> None:
        self._deps = deps

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: Context
    ) -> pb.ListNotificationsResponse:
        principal = current_principal()
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidRequest(
                [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")]
            )
        size = request.page_size or DEFAULT_PAGE
        query = NotificationQuery(
            organization=request.organization or principal.org,
            ticket_number=request.ticket_number,
            recipient=request.recipient,
            statuses=tr.statuses_from_pb(list(request.statuses)),
            channel=tr.channel_from_pb(request.channel),
            after=tr.decode_page_token(request.page_token),
            limit=size,
        )
        found = await inbox.list_notifications(self._deps.store, principal, query)
        token = tr.encode_page_token(found[-1].created_at, found[-1].notification_id) if len(found) == size else ""
        return pb.ListNotificationsResponse(notifications=[tr.notification_pb(n) for n in found], next_page_token=token)

    async def RetryNotification(self, request: pb.RetryNotificationRequest, context: Context) -> pb.Notification:
        found = await inbox.retry_notification(
            self._deps.store, self._deps.clock, current_principal(), request.notification_id, wake=self._deps.wake
        )
        return tr.notification_pb(found)
