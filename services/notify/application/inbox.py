"""Reading notifications (ListNotifications) and sending a failed one again (RetryNotification).

Who sees what:
- agents, team leads, integrations and services see every notification of their organisation;
- anyone else (a requester, a change manager…) sees only their own in-app notices: the inbox
  whose recipient is their subject;
- nobody crosses organisations.
Only agents and team leads of the organisation may send a notification again.
"""

from __future__ import annotations

from collections.abc import Callable

from services.kit.auth import AGENT, INTEGRATION, SERVICE, TEAM_LEAD, Principal
from services.kit.errors import FieldViolation
from services.notify.application.ports import Clock, DeliveryStore, Notification, NotificationQuery
from services.notify.domain.delivery import RETRYABLE, SENT_BY_SENDERS
from services.notify.domain.errors import InvalidRequest, NotAllowed, NotificationNotFound, NotRetryable
from services.notify.domain.rules import Channel

STAFF = (AGENT, TEAM_LEAD, INTEGRATION, SERVICE)
RETRIERS = (AGENT, TEAM_LEAD)


def scoped(principal: Principal, query: NotificationQuery) -> NotificationQuery:
    """The query the caller may run: another organisation is refused, and a caller who is not staff
    gets their own in-app notices only."""
    principal.require_org(query.organization)
    if not principal.has_any(*STAFF):
        if query.recipient and query.recipient != principal.subject:
            raise NotAllowed("you can list only your own notifications (recipient must be empty or your id)")
        if query.channel not in (None, "in_app"):
            raise NotAllowed("you can list only your in-app notifications")
        query = NotificationQuery(
            organization=query.organization,
            ticket_number=query.ticket_number,
            recipient=principal.subject,
            statuses=query.statuses,
            channel="in_app",
            after=query.after,
            limit=query.limit,
        )
    if not query.ticket_number and not query.recipient and not query.statuses:
        says = "give a ticket number, a recipient or statuses (e.g. DELIVERY_STATUS_DEAD)"
        raise InvalidRequest([FieldViolation(name, says) for name in ("ticket_number", "recipient", "statuses")])
    return query


async def list_notifications(
    store: DeliveryStore, principal: Principal, query: NotificationQuery
) -> list[Notification]:
    return await store.list(scoped(principal, query))


async def retry_notification(
    store: DeliveryStore,
    clock: Clock,
    principal: Principal,
    notification_id: str,
    *,
    wake: Callable[[Channel], None] = lambda channel: None,
) -> Notification:
    """Send a dead (or still retrying) notification again at once, its attempts counted from zero;
    its earlier attempts stay in the attempt log."""
    if not notification_id:
        raise InvalidRequest([FieldViolation("notification_id", "is required")])
    found = await store.get(notification_id)
    if found is None or found.organization != principal.org:
        raise NotificationNotFound(f"notification {notification_id} not found")
    principal.require_any(*RETRIERS, action="sending a notification again")
    if found.channel not in SENT_BY_SENDERS:
        raise NotRetryable("in-app notices are delivered when they are stored; there is nothing to send again")
    if not found.has_payload:
        raise NotRetryable(
            f"this notice could not be built ({found.last_error}); fix the cause — a later event will notify again"
        )
    if found.status not in RETRYABLE:
        raise NotRetryable(f"the notification is {found.status.value}; only dead or retrying ones can be sent again")
    if not await store.requeue(notification_id, clock.now(), RETRYABLE):
        raise NotRetryable("the notification changed meanwhile (it was sent or retried by someone else); list it again")
    wake(found.channel)
    again = await store.get(notification_id)
    assert again is not None
    return again
