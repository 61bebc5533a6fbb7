"""The ticket's timeline: one line per event, whoever produced it (intake writes its own events'
lines in the transaction that emits them; the read-model projection writes the other services')."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from supportflow.events.v1 import events_pb2

from services.intake.adapters.event_codec import PRIORITY_FROM_PB

RATING_NAMES = {1: "satisfied", 2: "neutral", 3: "dissatisfied"}


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
            helped = f", co-handlers {', '.join(p.co_handlers)}" if p.co_handlers else ""
            return f"assigned to {p.assignee or p.team}{helped}"
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


def timeline_row(event: events_pb2.Event) -> dict[str, Any]:
    at = event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else datetime.now(UTC)
    return {
        "ticket_number": event.ticket_number,
        "event_id": event.event_id,
        "at": at,
        "event_type": event.type,
        "actor_subject": event.actor.subject or "system",
        "actor_role": event.actor.role or "system",
        "summary": summary_of(event)[:2000],
    }
