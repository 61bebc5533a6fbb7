"""Intake's domain events → `supportflow.events.v1.Event` envelopes (the public contract)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.intake.domain import events as ev
from services.intake.domain.model import Actor, AttachmentInfo, Priority, Rating
from services.intake.domain.submission import Contact, Environment, Requester
from services.kit.events import new_event, set_timestamp

PRIORITY_PB = {
    Priority.P0: types_pb2.PRIORITY_P0,
    Priority.P1: types_pb2.PRIORITY_P1,
    Priority.P2: types_pb2.PRIORITY_P2,
    Priority.P3: types_pb2.PRIORITY_P3,
}
PRIORITY_FROM_PB = {v: k for k, v in PRIORITY_PB.items()}
RATINGS = {
    Rating.SATISFIED: types_pb2.RATING_SATISFIED,
    Rating.NEUTRAL: types_pb2.RATING_NEUTRAL,
    Rating.DISSATISFIED: types_pb2.RATING_DISSATISFIED,
}


# Nested fields are filled in place (`set_requester(msg.requester, r)`): a message built apart and
# passed to a constructor is copied again, and SubmitTicket builds two tickets' worth of them.


def set_requester(m: types_pb2.Requester, r: Requester) -> None:
    m.id, m.name, m.department, m.company, m.vip = r.id, r.name, r.department, r.company, r.vip


def set_contact(m: types_pb2.Contact, c: Contact) -> None:
    m.phone, m.email, m.im = c.phone, c.email, c.im


def set_environment(m: types_pb2.Environment, e: Environment) -> None:
    m.device, m.os, m.software, m.software_version = e.device, e.os, e.software, e.software_version


def set_attachment(m: types_pb2.Attachment, a: AttachmentInfo) -> None:
    m.attachment_id, m.file_name, m.content_type = a.attachment_id, a.file_name, a.content_type
    m.size_bytes, m.sha256, m.kind = a.size_bytes, a.sha256, a.kind
    set_timestamp(m.uploaded_at, a.uploaded_at)


def add_attachments(
    field: RepeatedCompositeFieldContainer[types_pb2.Attachment], infos: Iterable[AttachmentInfo]
) -> None:
    for a in infos:
        set_attachment(field.add(), a)


def payload_of(event: ev.IntakeEvent) -> Message:
    match event:
        case ev.TicketSubmitted(ticket=tk):
            p = events_pb2.TicketSubmitted(
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
                related_ticket_numbers=tk.related_ticket_numbers,
            )
            set_requester(p.requester, tk.requester)
            set_contact(p.contact, tk.contact)
            set_environment(p.environment, tk.environment)
            add_attachments(p.attachments, tk.attachments)
            set_timestamp(p.submitted_at, tk.submitted_at)
            if tk.occurred_at is not None:
                set_timestamp(p.occurred_at, tk.occurred_at)
            if tk.expected_resolution_at is not None:
                set_timestamp(p.expected_resolution_at, tk.expected_resolution_at)
            return p
        case ev.TicketSupplemented():
            supplemented = events_pb2.TicketSupplemented(
                additional_description=event.additional_description,
                reproduction_steps=event.reproduction_steps,
                missing_info=event.ticket.missing_info,
            )
            set_environment(supplemented.environment, event.environment)
            add_attachments(supplemented.attachments, event.attachments)
            return supplemented
        case ev.TicketCommented():
            commented = events_pb2.TicketCommented(comment_id=event.comment_id, body=event.body)
            add_attachments(commented.attachments, event.attachments)
            return commented
        case ev.TicketVerified():
            return events_pb2.TicketVerified(accepted=event.accepted, comment=event.comment)
        case ev.TicketRated():
            return events_pb2.TicketRated(rating=RATINGS[event.rating], comment=event.comment)
        case ev.TicketCancelled():
            return events_pb2.TicketCancelled(reason=event.reason)
    raise TypeError(f"no encoding for {type(event).__name__}")


def encode(events: Sequence[ev.IntakeEvent], actor: Actor, occurred_at: datetime) -> list[events_pb2.Event]:
    return [
        new_event(
            payload=payload_of(e),
            org=e.ticket.organization,
            ticket_number=e.ticket.ticket_number,
            producer="intake",
            actor_subject=actor.subject,
            actor_role=actor.role,
            occurred_at=occurred_at,
        )
        for e in events
    ]
