"""The ticket as intake keeps it: what was submitted, plus where the process has taken it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.intake.domain.errors import TicketStateConflict
from services.intake.domain.submission import Contact, Environment, Requester
from services.kit import lifecycle


class TicketStatus(enum.Enum):
    PENDING = "pending"
    WAITING_FOR_REQUESTER = "waiting_for_requester"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (TicketStatus.CLOSED, TicketStatus.CANCELLED)


class Priority(enum.Enum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Rating(enum.Enum):
    SATISFIED = "satisfied"
    NEUTRAL = "neutral"
    DISSATISFIED = "dissatisfied"


@dataclass(frozen=True, slots=True)
class Actor:
    subject: str
    role: str


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    attachment_id: str
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    kind: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    event_type: str
    actor: Actor
    summary: str


@dataclass(frozen=True, slots=True)
class Comment:
    comment_id: str
    ticket_number: str
    author: Actor
    body: str
    created_at: datetime
    attachments: tuple[AttachmentInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_number: str
    organization: str
    status: TicketStatus
    title: str
    requester: Requester
    contact: Contact
    channel: str
    problem_type: str
    impact_scope: str
    urgency: str
    description: str
    environment: Environment
    submitted_at: datetime
    updated_at: datetime
    occurred_at: datetime | None = None
    expected_resolution_at: datetime | None = None
    reproduction_steps: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    attachments: tuple[AttachmentInfo, ...] = ()
    missing_info: tuple[str, ...] = ()
    related_ticket_numbers: tuple[str, ...] = ()
    priority: Priority | None = None
    category: str = ""
    team: str = ""
    assignee: str = ""
    co_handlers: tuple[str, ...] = ()
    rating: Rating | None = None
    rating_comment: str = ""
    submitted_by: str = ""
    timeline: tuple[TimelineEntry, ...] = field(default=())
    comments: tuple[Comment, ...] = field(default=())

    @property
    def info_incomplete(self) -> bool:
        return bool(self.missing_info)

    def numbered(self, ticket_number: str, related_ticket_numbers: tuple[str, ...]) -> Ticket:
        """The submitted ticket as stored: its number and the requester's earlier tickets, both
        taken in the storing transaction. (`dataclasses.replace` would do; a field-by-field copy
        costs half as much, and every submission takes this step.)"""
        stored = object.__new__(Ticket)
        for name in Ticket.__slots__:
            object.__setattr__(stored, name, getattr(self, name))
        object.__setattr__(stored, "ticket_number", ticket_number)
        object.__setattr__(stored, "related_ticket_numbers", related_ticket_numbers)
        return stored

    # ---- requester actions: each returns the changed ticket or refuses ----

    def require_open(self, action: str) -> None:
        if self.status.is_final:
            raise TicketStateConflict(f"cannot {action}: ticket {self.ticket_number} is {self.status.value}")

    def confirm_resolution(self, accepted: bool, now: datetime) -> Ticket:
        if self.status is not TicketStatus.RESOLVED:
            raise TicketStateConflict(
                f"ticket {self.ticket_number} is {self.status.value}; only a resolved ticket can be verified"
            )
        return replace(self, status=TicketStatus(lifecycle.after_verification(accepted)), updated_at=now)

    def rate(self, rating: Rating, comment: str, now: datetime) -> Ticket:
        if self.rating is not None:
            raise TicketStateConflict(f"ticket {self.ticket_number} was already rated {self.rating.value}")
        if self.status not in (TicketStatus.COMPLETED, TicketStatus.CLOSED):
            raise TicketStateConflict(
                f"ticket {self.ticket_number} is {self.status.value}; it can be rated once the resolution is verified"
            )
        return replace(self, rating=rating, rating_comment=comment, updated_at=now)

    def cancel(self, now: datetime) -> Ticket:
        if self.status in (TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.COMPLETED):
            raise TicketStateConflict(f"ticket {self.ticket_number} is {self.status.value} and cannot be cancelled")
        return replace(self, status=TicketStatus.CANCELLED, updated_at=now)
