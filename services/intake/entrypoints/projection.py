"""Keeps intake's read model (status, priority, team, assignee, timeline) in step with the events
of the other services, so GetTicket/ListTickets show where a ticket stands.

Runs inside the kit's idempotent consumer transaction: each event is applied once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from supportflow.events.v1 import events_pb2

from services.intake.adapters import tables as t
from services.intake.domain.model import TicketStatus
from services.intake.domain.progress import next_status
from services.intake.entrypoints.translate import PRIORITY_FROM_PB
from services.kit.db import insert_ignoring_duplicates

RATING_NAMES = {1: "satisfied", 2: "neutral", 3: "dissatisfied"}

#: Intake's own events: they already changed the ticket; only the timeline learns of them.
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


def summary_of(event: events_pb2.Event) -> str:
    kind = event.WhichOneof("payload")
    p: Any = getattr(event, kind) if kind else None
    match event.type:
        case "ticket.submitted":
            return f"submitted: {p.title}"
        case "ticket.classified":
            matched = ", ".join(r.rule_id for r in p.matched_rules)
            priority = PRIORITY_FROM_PB[p.priority].value if p.priority in PRIORITY_FROM_PB else "unprioritised"
            return f"classified {priority} → {p.team}" + (f" (rules {matched})" if matched else "")
        case "ticket.info_requested":
            return "information requested: " + ", ".join(p.missing_info)
        case "task.created":
            return f"task '{p.name}' created for {', '.join(p.candidate_groups) or p.assignee}"
        case "task.claimed":
            return f"task claimed by {p.assignee}"
        case "task.completed":
            return f"task '{p.name}' completed by {p.completed_by}"
        case "ticket.assigned":
            return f"assigned to {p.assignee or p.team}"
        case "ticket.escalated":
            return f"escalated {p.from_tier} → {p.to_tier}" + (" (automatic)" if p.automatic else "")
        case "sla.warning" | "sla.breached":
            return f"{event.type.split('.')[1]}: {p.clock} clock"
        case "ticket.verified":
            return "resolution accepted" if p.accepted else f"resolution rejected: {p.comment}"
        case "ticket.rated":
            return f"rated {RATING_NAMES.get(p.rating, 'unrated')}"
        case "ticket.cancelled":
            return f"cancelled: {p.reason}" if p.reason else "cancelled"
        case "ticket.resolved":
            return f"resolved: {p.summary}" if p.summary else "resolved"
        case _:
            return event.type.replace(".", " ").replace("_", " ")


async def apply_event(conn: AsyncConnection, event: events_pb2.Event) -> None:
    at = event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else datetime.now(UTC)
    row = (
        await conn.execute(select(t.tickets.c.status).where(t.tickets.c.ticket_number == event.ticket_number))
    ).first()
    if row is None:
        # Not (yet) known here, e.g. another installation's ticket: nothing to project.
        return
    await insert_ignoring_duplicates(
        conn,
        t.timeline,
        {
            "ticket_number": event.ticket_number,
            "event_id": event.event_id,
            "at": at,
            "event_type": event.type,
            "actor_subject": event.actor.subject or "system",
            "actor_role": event.actor.role or "system",
            "summary": summary_of(event)[:2000],
        },
    )
    if event.type in OWN_EVENTS:
        return
    changes: dict[str, Any] = {}
    current = TicketStatus(row.status)
    status = next_status(current, event.type)
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
        changes["team"] = event.ticket_assigned.team or None
        changes["assignee"] = event.ticket_assigned.assignee
        changes = {k: v for k, v in changes.items() if v is not None}
    elif kind == "task_claimed":
        changes["assignee"] = event.task_claimed.assignee
    if changes:
        changes["updated_at"] = at
        await conn.execute(t.tickets.update().where(t.tickets.c.ticket_number == event.ticket_number).values(**changes))
