"""Intake's domain events → `supportflow.events.v1.Event` envelopes (the public contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.message import Message
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.intake.domain import events as ev
from services.intake.domain.model import Actor, AttachmentInfo, Priority, Rating
from services.intake.domain.submission import Contact, Environment, Requester
from services.kit.events import new_event, timestamp

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


def requester_pb(r: Requester) -> types_pb2.Requester:
    return types_pb2.Requester(id=r.id, name=r.name, department=r.department, company=r.company, vip=r.vip)


def contact_pb(c: Contact) -> types_pb2.Contact:
    return types_pb2.Contact(phone=c.phone, email=c.email, im=c.im)


def environment_pb(e: Environment) -> types_pb2.Environment:
    return types_pb2.Environment(device=e.device, os=e.os, software=e.software, software_version=e.software_version)


def attachment_pb(a: AttachmentInfo) -> types_pb2.Attachment:
    return types_pb2.Attachment(
        attachment_id=a.attachment_id,
        file_name=a.file_name,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        kind=a.kind,
        uploaded_at=timestamp(a.uploaded_at),
    )


def payload_of(event: ev.IntakeEvent) -> Message:
    match event:
        case ev.TicketSubmitted(ticket=tk):
            p = events_pb2.TicketSubmitted(
                title=tk.title,
                requester=requester_pb(tk.requester),
                contact=contact_pb(tk.contact),
                channel=tk.channel,
                problem_type=tk.problem_type,
                impact_scope=tk.impact_scope,
                urgency=tk.urgency,
                description=tk.description,
                environment=environment_pb(tk.environment),
                reproduction_steps=tk.reproduction_steps,
                attachments=[attachment_pb(a) for a in tk.attachments],
                labels=tk.labels,
                submitted_at=timestamp(tk.submitted_at),
                info_incomplete=tk.info_incomplete,
                missing_info=tk.missing_info,
                related_ticket_numbers=tk.related_ticket_numbers,
            )
            if tk.occurred_at is not None:
                p.occurred_at.CopyFrom(timestamp(tk.occurred_at))
            if tk.expected_resolution_at is not None:
                p.expected_resolution_at.CopyFrom(timestamp(tk.expected_resolution_at))
            return p
        case ev.TicketSupplemented():
            return events_pb2.TicketSupplemented(
                additional_description=event.additional_description,
                environment=environment_pb(event.environment),
                reproduction_steps=event.reproduction_steps,
                attachments=[attachment_pb(a) for a in event.attachments],
                missing_info=event.ticket.missing_info,
            )
        case ev.TicketCommented():
            return events_pb2.TicketCommented(
                comment_id=event.comment_id, body=event.body, attachments=[attachment_pb(a) for a in event.attachments]
            )
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
