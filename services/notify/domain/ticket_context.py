"""What notify knows about a ticket, gathered from the events it has seen.

notify never asks intake or workflow: everything a notice needs (who the requester is, the
priority, who handles it, the expected response time…) arrived in an earlier event. The service
keeps one `TicketContext` per ticket, `apply`s each event to it before planning, and stores it
(`to_dict` / `from_dict`, JSON-safe).

`apply` is idempotent for a redelivered event: it only sets fields from the event, and the one
thing it counts (was this the first classification?) is keyed by event id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from services.kit import lifecycle
from services.notify.domain.event import TicketEvent

#: A calendar of this name runs round the clock (bpmn/calendars/24x7.toml): its clocks are wall time.
ROUND_THE_CLOCK_CALENDARS = frozenset({"24x7"})


@dataclass(frozen=True, slots=True)
class TicketContext:
    number: str
    org: str
    title: str = ""
    #: Where the ticket stands as the requester sees it: services.kit.lifecycle's status, the one
    #: intake's read model shows.
    status: str = lifecycle.PENDING
    requester_id: str = ""
    requester_name: str = ""
    requester_email: str = ""
    #: Not carried by ticket.submitted today; the directory's entry for the requester decides.
    requester_locale: str = ""
    vip: bool = False
    problem_type: str = ""
    submitted_at: datetime | None = None
    priority: str = ""
    category: str = ""
    #: The routed team as routing.dmn names it, e.g. "运维团队 Operations".
    team: str = ""
    #: The candidate groups routing chose for the team, e.g. ("operations",).
    team_groups: tuple[str, ...] = ()
    #: Clock → ISO 8601 duration, e.g. {"respond": "PT2H", "resolve": "P3D"}.
    sla_targets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    calendar: str = ""
    first_classification_id: str = ""
    #: The ticket's main handler and co-handlers (SOP §4), as the last ticket.assigned named them.
    assignee: str = ""
    co_handlers: tuple[str, ...] = ()
    task_id: str = ""
    task_name: str = ""
    task_element_id: str = ""
    task_candidate_groups: tuple[str, ...] = ()
    task_due_at: datetime | None = None
    tier: str = "tier1"
    last_agent_comment: str = ""
    cause: str = ""
    measures: str = ""
    summary: str = ""
    rating: str = ""

    @property
    def expected_response(self) -> str:
        """The first-response target (SOP §5), e.g. "PT2H"; "" until the ticket is classified."""
        return self.sla_targets.get("respond", "")

    @property
    def business_time(self) -> bool:
        """Whether the SLA clocks count working time only (false for a 24×7 calendar)."""
        return bool(self.calendar) and self.calendar not in ROUND_THE_CLOCK_CALENDARS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketContext:
        """The inverse of `to_dict`; unknown keys (from a newer version) are ignored."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in ("submitted_at", "task_due_at"):
                value = datetime.fromisoformat(value) if value else None
            elif isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, Mapping):
                value = MappingProxyType(dict(value))
            values[f.name] = value
        return cls(**values)


def apply(context: TicketContext | None, event: TicketEvent) -> TicketContext:
    """The ticket as it stands after `event` (a fresh context when `context` is None)."""
    ctx = context or TicketContext(number=event.ticket_number, org=event.organization)
    changes = _changes(ctx, event)
    if (status := _status(ctx, event)) != ctx.status:
        changes["status"] = status
    return replace(ctx, **changes) if changes else ctx


def _status(ctx: TicketContext, e: TicketEvent) -> str:
    """The status after `e`, moved as intake moves its read model's (services.kit.lifecycle)."""
    match e.type:
        case "ticket.supplemented":
            return lifecycle.after_supplement(ctx.status, classified=bool(ctx.priority or ctx.team))
        case "ticket.verified":
            return lifecycle.after_verification(e.flag("accepted"))
        case "ticket.cancelled":
            return lifecycle.CANCELLED
    return lifecycle.next_status(ctx.status, e.type, has_handler=bool(ctx.assignee))


def _changes(ctx: TicketContext, e: TicketEvent) -> dict[str, Any]:
    match e.type:
        case "ticket.submitted":
            requester, contact = e.part("requester"), e.part("contact")
            return {
                "title": e.text("title"),
                "requester_id": _text(requester, "id"),
                "requester_name": _text(requester, "name"),
                "requester_email": _text(contact, "email"),
                "vip": requester.get("vip") is True,
                "problem_type": e.text("problem_type"),
                "submitted_at": e.time("submitted_at") or e.occurred_at,
            }
        case "ticket.classified":
            targets = e.part("sla_targets")
            return {
                "priority": e.text("priority") or ctx.priority,
                "category": e.text("category"),
                "team": e.text("team"),
                "team_groups": e.texts("candidate_groups"),
                "sla_targets": MappingProxyType({str(k): str(v) for k, v in targets.items()}),
                "calendar": e.text("calendar"),
                "first_classification_id": ctx.first_classification_id or e.event_id,
            }
        case "task.created":
            # A task's own assignee is not the ticket's handler (a bundle may give a review to a
            # named reviewer); only ticket.assigned names the handler. `task_assignee` rules reach
            # the task's assignee from the event itself.
            changes: dict[str, Any] = {
                "task_id": e.text("task_id"),
                "task_name": e.text("name"),
                "task_element_id": e.text("element_id"),
                "task_candidate_groups": e.texts("candidate_groups"),
                "task_due_at": e.time("due_at"),
            }
            if e.text("priority"):
                changes["priority"] = e.text("priority")
            return changes
        case "ticket.assigned":
            # SOP §4: the main handler and the co-handlers, as the assignment form named them (the
            # dispatcher's, or tier 2 taking the ticket over). Seed 002: the ticket is 已受理 then.
            return {
                "assignee": e.text("assignee") or ctx.assignee,
                "co_handlers": e.texts("co_handlers"),
                "team": e.text("team") or ctx.team,
            }
        case "ticket.escalated":
            return {"tier": e.text("to_tier") or ctx.tier}
        case "ticket.commented":
            return {"last_agent_comment": e.text("body")} if e.actor_role not in ("", "requester") else {}
        case "ticket.resolved":
            return {
                "cause": e.text("cause"),
                "measures": e.text("measures"),
                "summary": e.text("summary"),
            }
        case "ticket.rated":
            return {"rating": e.text("rating")}
        case "ticket.closed":
            return {"rating": e.text("rating") or ctx.rating}
    return {}


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value if isinstance(value, str) else ""
