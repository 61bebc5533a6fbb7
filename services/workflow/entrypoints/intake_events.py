"""Intake's events drive the process: `ticket.submitted` starts the ticket's instance (once), and
the requester's actions arrive as BPMN messages correlated by ticket number (bpmn/README.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from supportflow.events.v1 import events_pb2

from services.kit.events import SUBJECT_ROOT
from services.workflow.application import handlers
from services.workflow.application.progress import Actor

RATINGS = {1: "satisfied", 2: "neutral", 3: "dissatisfied"}
SUBJECTS = [
    f"{SUBJECT_ROOT}.*.{t}"
    for t in ("ticket.submitted", "ticket.supplemented", "ticket.verified", "ticket.rated", "ticket.cancelled")
]


def start_variables(event: events_pb2.Event) -> dict[str, Any]:
    """The process variables of a new instance, from `ticket.submitted` (bpmn/README.md)."""
    p = event.ticket_submitted
    return {
        "ticket_number": event.ticket_number,
        "organization": event.organization,
        "title": p.title,
        "problem_type": p.problem_type,
        "impact_scope": p.impact_scope,
        "urgency": p.urgency,
        "vip": p.requester.vip,
        "channel": p.channel,
        "requester_id": p.requester.id,
        "info_incomplete": p.info_incomplete,
        "missing_info": list(p.missing_info),
        "submitted_at": p.submitted_at.ToDatetime().isoformat() + "Z" if p.HasField("submitted_at") else "",
    }


def message_variables(event: events_pb2.Event) -> dict[str, Any]:
    kind = event.WhichOneof("payload")
    if kind == "ticket_supplemented":
        p = event.ticket_supplemented
        return {"missing_info": list(p.missing_info), "info_incomplete": bool(p.missing_info)}
    if kind == "ticket_verified":
        v = event.ticket_verified
        return {"verification_accepted": v.accepted, "verification_comment": v.comment}
    if kind == "ticket_rated":
        r = event.ticket_rated
        return {"rating": RATINGS.get(r.rating, ""), "rating_comment": r.comment}
    if kind == "ticket_cancelled":
        return {"cancel_reason": event.ticket_cancelled.reason}
    return {}


def _actor(event: events_pb2.Event) -> Actor:
    return Actor(event.actor.subject or "intake", event.actor.role or "system")


def handler(
    deps: handlers.WorkflowDeps, *, on_started: Callable[[int], None] = lambda count: None
) -> Callable[[Sequence[events_pb2.Event]], Awaitable[None]]:
    """Handles what one fetch brought: every submission first, together (a ticket's later events
    always follow its submission), then the requester actions in order."""

    async def handle_batch(events: Sequence[events_pb2.Event]) -> None:
        starts = [
            handlers.TicketStart(e.organization, e.ticket_number, start_variables(e), _actor(e))
            for e in events
            if e.type == "ticket.submitted"
        ]
        if starts:
            on_started(len(await handlers.start_instances(deps, starts)))
        for event in events:
            if event.type != "ticket.submitted":
                await handle(event)

    async def handle(event: events_pb2.Event) -> None:
        actor = _actor(event)
        delivered = await handlers.correlate_message(
            deps,
            actor,
            event.organization,
            event.type,
            event.ticket_number,
            message_variables(event),
            event.event_id,
            required=False,
        )
        if not delivered and event.type == "ticket.cancelled":
            # A process without a cancellation path still stops when the requester cancels.
            await handlers.cancel_instance(
                deps, actor, event.organization, event.ticket_number, event.ticket_cancelled.reason
            )

    return handle_batch
