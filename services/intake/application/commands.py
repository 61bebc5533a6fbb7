"""Commands: what a caller asks intake to do (imperative names)."""

from __future__ import annotations

from dataclasses import dataclass

from services.intake.domain.model import Rating
from services.intake.domain.submission import NewAttachment, Supplement, TicketSubmission


@dataclass(frozen=True, slots=True)
class SubmitTicket:
    request_id: str
    #: Hash of the request's content, to tell a retry from a reuse of the id for something else.
    fingerprint: str
    submission: TicketSubmission


@dataclass(frozen=True, slots=True)
class SupplementTicket:
    ticket_number: str
    request_id: str
    fingerprint: str
    supplement: Supplement


@dataclass(frozen=True, slots=True)
class AddComment:
    ticket_number: str
    request_id: str
    fingerprint: str
    body: str
    attachments: tuple[NewAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfirmResolution:
    ticket_number: str
    request_id: str
    fingerprint: str
    accepted: bool
    comment: str


@dataclass(frozen=True, slots=True)
class RateTicket:
    ticket_number: str
    request_id: str
    fingerprint: str
    rating: Rating | None
    comment: str


@dataclass(frozen=True, slots=True)
class CancelTicket:
    ticket_number: str
    request_id: str
    fingerprint: str
    reason: str
