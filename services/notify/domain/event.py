"""The events notify consumes, as plain values, and the facts a rule's `when` may test.

A `TicketEvent` is a `supportflow.events.v1.Event` decoded by the consumer (no protobuf here).
The payload is the event's payload message as a dict under the proto field names, with *every*
field present (templates run with StrictUndefined, so an empty field must still exist):

* strings, booleans and integers as they are ("" / False / 0 when unset);
* `google.protobuf.Timestamp` → an aware `datetime` in UTC, or None when unset;
* `Priority` → "P0"…"P3", `Rating` → "satisfied" / "neutral" / "dissatisfied" ("" when unspecified);
* repeated fields → lists; maps and `google.protobuf.Struct` → dicts;
* nested messages (`requester`, `contact`, `form`, `plan`…) → dicts of the same kind, also when unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal

from services.kit.events import EVENT_TYPES


@dataclass(frozen=True, slots=True)
class TicketEvent:
    event_id: str
    type: str
    occurred_at: datetime
    organization: str
    ticket_number: str
    actor_subject: str = ""
    actor_role: str = ""
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def text(self, name: str) -> str:
        value = self.payload.get(name)
        return value if isinstance(value, str) else ""

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.payload.get(name)
        return tuple(v for v in value if isinstance(v, str) and v) if isinstance(value, list | tuple) else ()

    def flag(self, name: str) -> bool:
        return self.payload.get(name) is True

    def time(self, name: str) -> datetime | None:
        value = self.payload.get(name)
        return value if isinstance(value, datetime) else None

    def part(self, name: str) -> Mapping[str, Any]:
        value = self.payload.get(name)
        return value if isinstance(value, Mapping) else {}


#: What a `when` value must be: free text, true/false, a whole number, P0–P3, or a rating.
FactKind = Literal["text", "flag", "number", "priority", "rating"]

PRIORITIES: Final = ("P0", "P1", "P2", "P3")
RATINGS: Final = ("satisfied", "neutral", "dissatisfied")

#: Facts every event has: the ticket's priority (as it stands after the event) and who caused it.
COMMON_FACTS: Final[Mapping[str, FactKind]] = {"priority": "priority", "actor_role": "text"}

#: The payload fields a rule may test, per event type (the scalar ones that say something a rule
#: would branch on), plus the derived `reclassified` (a later ticket.classified: the team lead
#: corrected the priority). A test checks these against events.proto.
EVENT_FACTS: Final[Mapping[str, Mapping[str, FactKind]]] = {
    "ticket.submitted": {
        "channel": "text",
        "problem_type": "text",
        "impact_scope": "text",
        "urgency": "text",
        "info_incomplete": "flag",
    },
    "ticket.supplemented": {},
    "ticket.commented": {},
    "ticket.verified": {"accepted": "flag"},
    "ticket.rated": {"rating": "rating"},
    "ticket.cancelled": {},
    "ticket.classified": {"category": "text", "team": "text", "calendar": "text", "reclassified": "flag"},
    "ticket.info_requested": {"reminder": "flag"},
    "task.created": {"element_id": "text", "name": "text", "assignee": "text"},
    "task.claimed": {"element_id": "text", "assignee": "text"},
    "task.completed": {"element_id": "text", "name": "text", "completed_by": "text"},
    "ticket.assigned": {"team": "text", "assignee": "text"},
    "ticket.escalated": {"from_tier": "text", "to_tier": "text", "automatic": "flag"},
    "sla.warning": {"clock": "text"},
    "sla.breached": {"clock": "text"},
    "ticket.progress_due": {"sequence": "number"},
    "change.approval_requested": {"author": "text", "round": "number"},
    "change.decided": {"approved": "flag", "approver": "text", "round": "number"},
    "review.requested": {"operation": "text", "performer": "text"},
    "review.decided": {"approved": "flag", "reviewer": "text"},
    "ticket.resolved": {"resolved_by": "text"},
    "ticket.survey_requested": {},
    "ticket.revisit_required": {},
    "ticket.closed": {"outcome": "text", "rating": "rating"},
}
DERIVED_FACTS: Final = frozenset({"reclassified"})


def facts_of(event_type: str) -> Mapping[str, FactKind]:
    """The facts a rule for `event_type` may test; an event type added to events.proto later has
    the common ones until it is listed here."""
    return {**COMMON_FACTS, **EVENT_FACTS.get(event_type, {})}


def is_event_type(name: str) -> bool:
    return name in EVENT_TYPES
