"""proto ↔ domain translation for the gRPC API. No decisions here, only shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2

from services.intake.adapters.event_codec import (
    PRIORITY_PB,
    RATINGS,
    add_attachments,
    set_contact,
    set_environment,
    set_requester,
)
from services.intake.application.ports import PageCursor
from services.intake.domain.errors import InvalidTicket
from services.intake.domain.model import Comment, Rating, Ticket, TicketStatus
from services.intake.domain.submission import (
    Contact,
    Environment,
    NewAttachment,
    Requester,
    Supplement,
    TicketSubmission,
)
from services.kit.auth import Principal
from services.kit.errors import FieldViolation
from services.kit.events import set_timestamp

STATUS_PB = {
    TicketStatus.PENDING: types_pb2.TICKET_STATUS_PENDING,
    TicketStatus.WAITING_FOR_REQUESTER: types_pb2.TICKET_STATUS_WAITING_FOR_REQUESTER,
    TicketStatus.ACCEPTED: types_pb2.TICKET_STATUS_ACCEPTED,
    TicketStatus.IN_PROGRESS: types_pb2.TICKET_STATUS_IN_PROGRESS,
    TicketStatus.RESOLVED: types_pb2.TICKET_STATUS_RESOLVED,
    TicketStatus.COMPLETED: types_pb2.TICKET_STATUS_COMPLETED,
    TicketStatus.CLOSED: types_pb2.TICKET_STATUS_CLOSED,
    TicketStatus.CANCELLED: types_pb2.TICKET_STATUS_CANCELLED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_PB.items()}
RATING_FROM_PB = {v: k for k, v in RATINGS.items()}


def fingerprint(request: Message, principal: Principal) -> str:
    """Identifies a request's content (and caller) to tell retries from reuse of a request id."""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True))
    digest.update(principal.subject.encode())
    return digest.hexdigest()


def _dt(msg: Message, field: str) -> datetime | None:
    if not msg.HasField(field):
        return None
    ts: Timestamp = getattr(msg, field)
    return ts.ToDatetime(tzinfo=UTC)


def _environment(e: types_pb2.Environment) -> Environment:
    return Environment(device=e.device, os=e.os, software=e.software, software_version=e.software_version)


def attachments_from(uploads: Iterable[types_pb2.AttachmentUpload]) -> tuple[NewAttachment, ...]:
    return tuple(
        NewAttachment(file_name=a.file_name, content_type=a.content_type, content=a.content, kind=a.kind or "other")
        for a in uploads
    )


def submission_from(req: intake_pb2.SubmitTicketRequest) -> TicketSubmission:
    r, c = req.requester, req.contact
    return TicketSubmission(
        organization=req.organization,
        title=req.title,
        requester=Requester(id=r.id, name=r.name, department=r.department, company=r.company, vip=r.vip),
        contact=Contact(phone=c.phone, email=c.email, im=c.im),
        channel=req.channel,
        problem_type=req.problem_type,
        impact_scope=req.impact_scope,
        urgency=req.urgency,
        description=req.description,
        environment=_environment(req.environment),
        occurred_at=_dt(req, "occurred_at"),
        reproduction_steps=tuple(req.reproduction_steps),
        attachments=attachments_from(req.attachments),
        expected_resolution_at=_dt(req, "expected_resolution_at"),
        labels=tuple(req.labels),
    )


def supplement_from(req: intake_pb2.SupplementTicketRequest) -> Supplement:
    return Supplement(
        additional_description=req.additional_description,
        environment=_environment(req.environment),
        reproduction_steps=tuple(req.reproduction_steps),
        attachments=attachments_from(req.attachments),
    )


def rating_from(value: int) -> Rating | None:
    if value == types_pb2.RATING_UNSPECIFIED:
        return None
    try:
        return RATING_FROM_PB[value]  # type: ignore[index]
    except KeyError:
        raise InvalidTicket([FieldViolation("rating", f"unknown rating value {value}")]) from None


def comment_pb(c: Comment) -> intake_pb2.Comment:
    out = intake_pb2.Comment(comment_id=c.comment_id, ticket_number=c.ticket_number, body=c.body)
    out.author.subject, out.author.role = c.author.subject, c.author.role
    add_attachments(out.attachments, c.attachments)
    set_timestamp(out.created_at, c.created_at)
    return out


def ticket_pb(tk: Ticket) -> intake_pb2.Ticket:
    """Nested fields are filled in place (see event_codec): this runs for every ticket returned."""
    out = intake_pb2.Ticket(
        ticket_number=tk.ticket_number,
        organization=tk.organization,
        status=STATUS_PB[tk.status],
        title=tk.title,
        channel=tk.channel,
        problem_type=tk.problem_type,
        impact_scope=tk.impact_scope,
        urgency=tk.urgency,
        description=tk.description,
        reproduction_steps=tk.reproduction_steps,
        labels=tk.labels,
        info_incomplete=tk.info_incomplete,
        missing_info=tk.missing_info,
        category=tk.category,
        team=tk.team,
        assignee=tk.assignee,
        co_handlers=tk.co_handlers,
        related_ticket_numbers=tk.related_ticket_numbers,
    )
    set_requester(out.requester, tk.requester)
    set_contact(out.contact, tk.contact)
    set_environment(out.environment, tk.environment)
    add_attachments(out.attachments, tk.attachments)
    set_timestamp(out.submitted_at, tk.submitted_at)
    set_timestamp(out.updated_at, tk.updated_at)
    for e in tk.timeline:
        line = out.timeline.add(event_type=e.event_type, summary=e.summary)
        set_timestamp(line.at, e.at)
        line.actor.subject, line.actor.role = e.actor.subject, e.actor.role
    out.comments.extend(comment_pb(c) for c in tk.comments)
    if tk.priority is not None:
        out.priority = PRIORITY_PB[tk.priority]
    if tk.rating is not None:
        out.rating = RATINGS[tk.rating]
    if tk.occurred_at is not None:
        set_timestamp(out.occurred_at, tk.occurred_at)
    if tk.expected_resolution_at is not None:
        set_timestamp(out.expected_resolution_at, tk.expected_resolution_at)
    return out


# ---- page tokens: opaque, bound to the filters they were issued for ----


def filter_key(req: intake_pb2.ListTicketsRequest) -> str:
    copy = intake_pb2.ListTicketsRequest()
    copy.CopyFrom(req)
    copy.ClearField("page_token")
    copy.ClearField("page_size")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def encode_page_token(cursor: PageCursor, key: str) -> str:
    raw = json.dumps({"t": cursor.submitted_at.isoformat(), "n": cursor.ticket_number, "f": key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, key: str) -> PageCursor | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = PageCursor(datetime.fromisoformat(data["t"]), str(data["n"]))
        same_filters = data["f"] == key
    except (ValueError, KeyError, TypeError):
        raise InvalidTicket([FieldViolation("page_token", "is not a token this service issued")]) from None
    if not same_filters:
        raise InvalidTicket(
            [FieldViolation("page_token", "was issued for different filters; start from the first page")]
        )
    return cursor


#: ListTicketsRequest.text: at most this many words, each at most this long.
MAX_SEARCH_WORDS, MAX_SEARCH_WORD = 10, 100


def search_words(text: str) -> tuple[str, ...]:
    """The words of a ListTickets `text` search, each once, in order."""
    words = tuple(dict.fromkeys(text.split()))
    if len(words) > MAX_SEARCH_WORDS:
        raise InvalidTicket([FieldViolation("text", f"at most {MAX_SEARCH_WORDS} words (got {len(words)})")])
    if too_long := [w for w in words if len(w) > MAX_SEARCH_WORD]:
        raise InvalidTicket(
            [
                FieldViolation(
                    "text", f"a word is at most {MAX_SEARCH_WORD} characters ('{too_long[0][:20]}…' is longer)"
                )
            ]
        )
    return words
