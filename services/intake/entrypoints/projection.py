"""Keeps intake's read model (status, priority, team, assignee, co-handlers, timeline) in step with
the events of the other services, so GetTicket/ListTickets show where a ticket stands.

Runs inside the kit's idempotent consumer transaction: each event is applied once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from supportflow.events.v1 import events_pb2

from services.intake.adapters import tables as t
from services.intake.adapters.event_codec import PRIORITY_FROM_PB
from services.intake.adapters.timeline import timeline_row
from services.intake.domain.errors import MalformedEvent
from services.intake.domain.model import TicketStatus
from services.intake.domain.progress import next_status
from services.kit.db import insert_ignoring_duplicates, is_postgres
from services.kit.events import EVENT_TYPES, SUBJECT_ROOT

#: Intake's own events: the transaction that emitted them already changed the ticket and its timeline.
OWN_EVENTS = frozenset(
    {
        "ticket.submitted",
        "ticket.supplemented",
        "ticket.commented",
        "ticket.verified",
        "ticket.rated",
        "ticket.cancelled",
    }
)
#: What the projection listens to: every other service's events (one filter subject per type).
SUBJECTS = [f"{SUBJECT_ROOT}.*.{event_type}" for event_type in sorted(set(EVENT_TYPES) - OWN_EVENTS)]


async def apply_event(conn: AsyncConnection, event: events_pb2.Event) -> None:
    if event.type in OWN_EVENTS:
        return
    expected = EVENT_TYPES.get(event.type)
    if expected is not None and event.WhichOneof("payload") != expected:
        raise MalformedEvent(f"{event.type} event carries payload {event.WhichOneof('payload') or '(none)'}")
    at = event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else datetime.now(UTC)
    query = select(t.tickets.c.status, t.tickets.c.assignee).where(t.tickets.c.ticket_number == event.ticket_number)
    if is_postgres(conn):
        # Lock the row: a requester action committing meanwhile (e.g. a cancellation) must not be
        # overwritten by a status computed from what was there before it.
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        # Not (yet) known here, e.g. another installation's ticket: nothing to project.
        return
    await insert_ignoring_duplicates(conn, t.timeline, timeline_row(event))
    changes: dict[str, Any] = {}
    current = TicketStatus(row.status)
    status = next_status(current, event.type, has_handler=bool(row.assignee))
    if status is not current:
        changes["status"] = status.value
    kind = event.WhichOneof("payload")
    if kind == "ticket_classified":
        p = event.ticket_classified
        if p.priority in PRIORITY_FROM_PB:
            changes["priority"] = PRIORITY_FROM_PB[p.priority].value
        changes["team"] = p.team
        changes["category"] = p.category
    elif kind == "ticket_assigned":
        # The ticket's handler (SOP §4's main handler) is who an assignment names. A claimed task
        # does not change it: the change manager claiming an approval or the reviewer claiming a
        # review works on the ticket without handling it; the claim shows on the timeline only.
        if event.ticket_assigned.team:
            changes["team"] = event.ticket_assigned.team
        changes["assignee"] = event.ticket_assigned.assignee
        changes["co_handlers"] = list(event.ticket_assigned.co_handlers)
    if changes:
        changes["updated_at"] = at
        await conn.execute(t.tickets.update().where(t.tickets.c.ticket_number == event.ticket_number).values(**changes))
