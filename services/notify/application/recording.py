"""An event arrives: bring the ticket's context up to date, plan its notices, render and store them.

Runs inside the event consumer's transaction (with its processed-events row), so an event is
recorded whole or not at all. Nothing is sent here: in-app notices are delivered by being stored
(sent at once); e-mails and webhook calls are stored pending and due now, for the channel's sender
loop. Each notice's `notice_key` (event, recipient, channel) is unique in the store, so an event
recorded twice adds nothing the second time.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from services.notify.application.ports import (
    ActiveConfig,
    ComposeFailed,
    Composer,
    IdGenerator,
    NewNotification,
    RecordStore,
)
from services.notify.domain.delivery import Status
from services.notify.domain.errors import TemplateError
from services.notify.domain.event import TicketEvent
from services.notify.domain.planning import PlannedNotice, plan
from services.notify.domain.rules import Channel
from services.notify.domain.templates import RenderedMessage, render
from services.notify.domain.ticket_context import apply

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Recorded:
    """What one event added, counted by (channel, status)."""

    added: Counter[tuple[Channel, Status]] = field(default_factory=Counter)
    #: Planned notices already stored (the event was recorded before).
    duplicates: int = 0


async def record_event(
    store: RecordStore,
    config: ActiveConfig,
    event: TicketEvent,
    *,
    now: datetime,
    ids: IdGenerator,
    composer: Composer,
) -> Recorded:
    recorded = Recorded()
    if not event.ticket_number or not event.organization:
        log.debug("%s %s concerns no ticket: nothing to notify", event.type, event.event_id)
        return recorded
    before = await store.load_context(event.organization, event.ticket_number)
    context = apply(before, event)
    cfg = config.notify
    notices = plan(event, context, cfg.rules, cfg.directory, on_unresolved=lambda why: log.info("no notice: %s", why))
    rows = [_notification(n, config, now, ids, composer) for n in notices]
    if rows:
        added = await store.add_notifications(rows)
        recorded.duplicates = len(rows) - len(added)
        recorded.added.update((row.channel, row.status) for row in added)
    if before is None or context != before:
        await store.save_context(context, now, new=before is None)
    return recorded


def _notification(
    notice: PlannedNotice, config: ActiveConfig, now: datetime, ids: IdGenerator, composer: Composer
) -> NewNotification:
    templates = config.notify.templates_for(notice.organization)
    problem = ""
    message = RenderedMessage("", "", "", notice.locale)
    payload = b""
    try:
        message = render(templates, notice.template, notice.locale, notice.variables)
        if notice.channel == "email":
            payload = composer.email(notice, message, config.notify.directory.org(notice.organization), now)
        elif notice.channel == "webhook":
            payload = composer.webhook_body(notice, message, now)
            problem = _webhook_problem(notice, config)
    except TemplateError as exc:
        problem = f"the template failed: {exc}"
        log.error("%s %s for %s: %s", notice.event_type, notice.ticket_number, notice.recipient, problem)
    except ComposeFailed as exc:
        problem = f"cannot build the {notice.channel} message: {exc}"
        log.error("%s %s for %s: %s", notice.event_type, notice.ticket_number, notice.recipient, problem)
    if problem:
        status, due, sent_at = Status.DEAD, None, None
    elif notice.channel == "in_app":
        status, due, sent_at = Status.SENT, None, now
    else:
        status, due, sent_at = Status.PENDING, now, None
    return NewNotification(
        notification_id=ids.new_id(),
        notice_key=notice.notice_key,
        organization=notice.organization,
        ticket_number=notice.ticket_number,
        event_id=notice.event_id,
        event_type=notice.event_type,
        recipient=notice.recipient,
        channel=notice.channel,
        template=notice.template,
        locale=message.locale,
        subject=message.subject,
        body=message.text,
        payload=payload,
        webhook=notice.webhook.name if notice.webhook is not None else None,
        status=status,
        next_attempt_at=due,
        last_error=problem,
        created_at=now,
        sent_at=sent_at,
    )


def _webhook_problem(notice: PlannedNotice, config: ActiveConfig) -> str:
    if notice.webhook is None:
        return "no webhook"
    reason = config.unusable_webhooks.get((notice.organization, notice.webhook.name))
    if reason is None:
        return ""
    log.warning("%s %s: webhook %s: %s", notice.event_type, notice.ticket_number, notice.webhook.name, reason)
    return f"webhook '{notice.webhook.name}' cannot be called: {reason}"
