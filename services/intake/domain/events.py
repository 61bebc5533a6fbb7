"""What intake tells the rest of supportflow, as plain values (encoded to protobuf by an adapter)."""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.domain.model import AttachmentInfo, Rating, Ticket
from services.intake.domain.submission import Environment


@dataclass(frozen=True, slots=True)
class TicketSubmitted:
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class TicketSupplemented:
    ticket: Ticket
    additional_description: str
    environment: Environment
    reproduction_steps: tuple[str, ...]
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True, slots=True)
class TicketCommented:
    ticket: Ticket
    comment_id: str
    body: str
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True, slots=True)
class TicketVerified:
    ticket: Ticket
    accepted: bool
    comment: str


@dataclass(frozen=True, slots=True)
class TicketRated:
    ticket: Ticket
    rating: Rating
    comment: str


@dataclass(frozen=True, slots=True)
class TicketCancelled:
    ticket: Ticket
    reason: str


IntakeEvent = TicketSubmitted | TicketSupplemented | TicketCommented | TicketVerified | TicketRated | TicketCancelled
