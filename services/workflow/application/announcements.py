"""What the workflow service tells the rest of supportflow, as plain values. The unit of work
encodes them as `supportflow.events.v1` envelopes into the outbox (adapters/event_codec.py).

Who did it: a person's own action — claiming a task, completing it, and the assignment its form
made — is theirs. Everything the process then does by itself (messages thrown by business rule
and script tasks, gateways, timers; tasks opened; SLA warnings and breaches) is the system's
(`SYSTEM`), even when a person's action set it going: the history and intake's timeline say
"system classified the ticket", not "the requester did".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from services.workflow.application.engine import ThrownEvent
from services.workflow.domain.assignment import Assignment
from services.workflow.domain.sla import SlaClock
from services.workflow.domain.tasks import WorkTask


@dataclass(frozen=True, slots=True)
class Thrown:
    """A message the diagram threw (ticket.classified, ticket.resolved, …)."""

    event: ThrownEvent
    matched_rules: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TaskCreated:
    task: WorkTask


@dataclass(frozen=True, slots=True)
class TaskClaimed:
    task: WorkTask


@dataclass(frozen=True, slots=True)
class TaskCompleted:
    task: WorkTask


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    """A completed task named the ticket's handler (domain/assignment.py)."""

    assignment: Assignment


@dataclass(frozen=True, slots=True)
class SlaWarning:
    clock: SlaClock
    remaining_seconds: int


@dataclass(frozen=True, slots=True)
class SlaBreached:
    clock: SlaClock
    at: datetime


Announcement = Thrown | TaskCreated | TaskClaimed | TaskCompleted | TicketAssigned | SlaWarning | SlaBreached

#: The actor (subject, role) of automatic steps, as common.v1.Actor documents it.
SYSTEM: Final = ("system", "system")
#: The announcements that are a person's own action (the rest are the system's).
PERSONAL: Final = (TaskClaimed, TaskCompleted, TicketAssigned)


def is_personal(said: Announcement) -> bool:
    """Whether `said` is the action of the person who called, not a step the process ran by itself."""
    return isinstance(said, PERSONAL)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who, where and when, for a batch of announcements (all a person's, or all the system's)."""

    organization: str
    ticket_number: str
    actor_subject: str
    actor_role: str
    at: datetime
    announcements: tuple[Announcement, ...] = field(default_factory=tuple)
