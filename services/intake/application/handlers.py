"""The use cases: one function per command, each one transaction (state + outbox)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from services.intake.application import authorization as authz
from services.intake.application.commands import (
    AddComment,
    CancelTicket,
    ConfirmResolution,
    RateTicket,
    SubmitTicket,
    SupplementTicket,
)
from services.intake.application.ports import (
    Clock,
    DuplicateRequest,
    IdGenerator,
    PageCursor,
    RecordedRequest,
    TicketFilter,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.intake.application.submitting import (
    PendingSubmission,
    SubmissionQueue,
    Submitted,
    request_id_reused,
)
from services.intake.domain import events as ev
from services.intake.domain import validation
from services.intake.domain.catalog import Catalog
from services.intake.domain.errors import InvalidTicket, TicketNotFound
from services.intake.domain.model import Actor, AttachmentInfo, Comment, Ticket, TicketStatus
from services.intake.domain.numbering import business_day
from services.intake.domain.progress import after_supplement
from services.intake.domain.submission import NewAttachment
from services.kit.auth import Principal
from services.kit.errors import FieldViolation

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IntakeDeps:
    uow: UnitOfWorkFactory
    catalog: Catalog
    clock: Clock
    ids: IdGenerator
    submissions: SubmissionQueue


def _actor(principal: Principal) -> Actor:
    return Actor(principal.subject, principal.primary_role)


def _attachment_infos(deps: IntakeDeps, uploads: Sequence[NewAttachment]) -> tuple[AttachmentInfo, ...]:
    now = deps.clock.now()
    return tuple(
        AttachmentInfo(
            attachment_id=deps.ids.new_id(),
            file_name=a.file_name,
            content_type=a.content_type or "application/octet-stream",
            size_bytes=len(a.content),
            sha256=hashlib.sha256(a.content).hexdigest(),
            kind=a.kind,
            uploaded_at=now,
        )
        for a in uploads
    )


async def _replay(
    uow: UnitOfWork, org: str, request_id: str, operation: str, fingerprint: str
) -> RecordedRequest | None:
    if not request_id:
        return None
    seen = await uow.requests.find(org, request_id)
    if seen is None:
        return None
    if seen.operation != operation or seen.fingerprint != fingerprint:
        raise request_id_reused(seen.operation)
    return seen


async def _with_retry_on_duplicate(run: Callable[[], Awaitable[T]]) -> T:
    """A concurrent call with the same request id committed first: run again to replay it."""
    try:
        return await run()
    except DuplicateRequest:
        return await run()


async def submit_ticket(deps: IntakeDeps, principal: Principal, cmd: SubmitTicket) -> Submitted:
    validation.check_request_id(cmd.request_id, required=True)
    sub = cmd.submission
    org = deps.catalog.organisation(sub.organization)
    requester_id = sub.requester.id or principal.subject
    authz.can_submit(principal, org.id, sub.requester.id)
    now = deps.clock.now()
    validation.validate_submission(sub, org, now)
    attachments = _attachment_infos(deps, sub.attachments)
    missing = validation.missing_information(
        org.problem_types[sub.problem_type].required_info,
        environment=sub.environment,
        reproduction_steps=sub.reproduction_steps,
        attachment_kinds=(a.kind for a in attachments),
        occurred_at=sub.occurred_at,
    )

    draft = Ticket(
        ticket_number="",  # taken when the ticket is stored, in the same transaction
        organization=org.id,
        status=TicketStatus.PENDING,
        title=sub.title.strip(),
        requester=sub.requester if sub.requester.id else replace(sub.requester, id=requester_id),
        contact=sub.contact,
        channel=sub.channel,
        problem_type=sub.problem_type,
        impact_scope=sub.impact_scope,
        urgency=sub.urgency,
        description=sub.description,
        environment=sub.environment,
        submitted_at=now,
        updated_at=now,
        occurred_at=sub.occurred_at,
        expected_resolution_at=sub.expected_resolution_at,
        reproduction_steps=sub.reproduction_steps,
        labels=sub.labels,
        attachments=attachments,
        missing_info=tuple(missing),
        submitted_by=principal.subject,
    )
    pending = PendingSubmission(
        org=org,
        day=business_day(now, org.time_zone),
        request_id=cmd.request_id,
        fingerprint=cmd.fingerprint,
        actor=_actor(principal),
        draft=draft,
        contents=tuple(a.content for a in sub.attachments),
    )
    return await _with_retry_on_duplicate(lambda: deps.submissions.submit(pending))


async def get_ticket(deps: IntakeDeps, principal: Principal, ticket_number: str) -> Ticket:
    async with deps.uow(read_only=True) as uow:
        ticket = await _load(uow, ticket_number)
    authz.can_see(principal, ticket)
    return ticket


async def list_tickets(
    deps: IntakeDeps, principal: Principal, flt: TicketFilter, after: PageCursor | None, limit: int
) -> list[Ticket]:
    deps.catalog.organisation(flt.organization)
    scoped = replace(flt, requester_id=authz.list_scope(principal, flt.organization, flt.requester_id))
    async with deps.uow(read_only=True) as uow:
        return await uow.tickets.list(scoped, after, limit)


async def _load(uow: UnitOfWork, ticket_number: str, *, for_update: bool = False) -> Ticket:
    ticket = await uow.tickets.get(ticket_number, for_update=for_update) if ticket_number else None
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_number or '(empty number)'} not found")
    return ticket


async def supplement_ticket(deps: IntakeDeps, principal: Principal, cmd: SupplementTicket) -> Ticket:
    validation.check_request_id(cmd.request_id, required=False)
    sup = cmd.supplement

    async def run() -> Ticket:
        async with deps.uow() as uow:
            ticket = await _load(uow, cmd.ticket_number, for_update=True)
            authz.can_act_as_requester(principal, ticket, "supplement the ticket")
            if await _replay(uow, ticket.organization, cmd.request_id, "SupplementTicket", cmd.fingerprint):
                return ticket
            ticket.require_open("supplement")
            org = deps.catalog.organisation(ticket.organization)
            validation.validate_supplement(sup, org, existing_attachments=len(ticket.attachments))
            now = deps.clock.now()
            added = _attachment_infos(deps, sup.attachments)
            description = ticket.description
            if sup.additional_description.strip():
                description = f"{description}\n\n[{now:%Y-%m-%d %H:%M} UTC] {sup.additional_description.strip()}"
            environment = ticket.environment.merged(sup.environment)
            steps = ticket.reproduction_steps + sup.reproduction_steps
            attachments = ticket.attachments + added
            missing = validation.missing_information(
                org.problem_types[ticket.problem_type].required_info
                if ticket.problem_type in org.problem_types
                else (),
                environment=environment,
                reproduction_steps=steps,
                attachment_kinds=(a.kind for a in attachments),
                occurred_at=ticket.occurred_at,
            )
            updated = replace(
                ticket,
                status=after_supplement(ticket.status, classified=ticket.priority is not None or bool(ticket.team)),
                description=description,
                environment=environment,
                reproduction_steps=steps,
                attachments=attachments,
                missing_info=tuple(missing),
                updated_at=now,
            )
            await uow.tickets.save(updated)
            await uow.tickets.add_attachments(ticket.ticket_number, None, added, [a.content for a in sup.attachments])
            await _record(uow, updated, cmd.request_id, "SupplementTicket", cmd.fingerprint)
            uow.emit(
                _actor(principal),
                [
                    ev.TicketSupplemented(
                        updated, sup.additional_description, sup.environment, sup.reproduction_steps, added
                    )
                ],
            )
            await uow.commit()
            return updated

    return await _with_retry_on_duplicate(run)


async def _record(
    uow: UnitOfWork, ticket: Ticket, request_id: str, operation: str, fingerprint: str, result_id: str = ""
) -> None:
    if request_id:
        await uow.requests.record(
            ticket.organization,
            request_id,
            RecordedRequest(operation, fingerprint, ticket.ticket_number, result_id or ticket.ticket_number),
        )


async def add_comment(deps: IntakeDeps, principal: Principal, cmd: AddComment) -> Comment:
    validation.check_request_id(cmd.request_id, required=False)

    async def run() -> Comment:
        async with deps.uow() as uow:
            ticket = await _load(uow, cmd.ticket_number, for_update=True)
            authz.can_see(principal, ticket)
            seen = await _replay(uow, ticket.organization, cmd.request_id, "AddComment", cmd.fingerprint)
            if seen is not None:
                existing = await uow.tickets.get_comment(seen.result_id)
                assert existing is not None
                return existing
            ticket.require_open("comment")
            org = deps.catalog.organisation(ticket.organization)
            validation.validate_comment(cmd.body, cmd.attachments, org, existing=len(ticket.attachments))
            comment = Comment(
                comment_id=deps.ids.new_id(),
                ticket_number=ticket.ticket_number,
                author=_actor(principal),
                body=cmd.body,
                created_at=deps.clock.now(),
                attachments=_attachment_infos(deps, cmd.attachments),
            )
            await uow.tickets.add_comment(comment, [a.content for a in cmd.attachments])
            await _record(uow, ticket, cmd.request_id, "AddComment", cmd.fingerprint, comment.comment_id)
            uow.emit(
                _actor(principal), [ev.TicketCommented(ticket, comment.comment_id, comment.body, comment.attachments)]
            )
            await uow.commit()
            return comment

    return await _with_retry_on_duplicate(run)


async def confirm_resolution(deps: IntakeDeps, principal: Principal, cmd: ConfirmResolution) -> Ticket:
    validation.check_request_id(cmd.request_id, required=False)
    if not cmd.accepted and not cmd.comment.strip():
        raise InvalidTicket(
            [FieldViolation("comment", "is required when the resolution is not accepted: say what still fails")]
        )

    async def run() -> Ticket:
        async with deps.uow() as uow:
            ticket = await _load(uow, cmd.ticket_number, for_update=True)
            authz.can_act_as_requester(principal, ticket, "verify the resolution")
            if await _replay(uow, ticket.organization, cmd.request_id, "ConfirmResolution", cmd.fingerprint):
                return ticket
            updated = ticket.confirm_resolution(cmd.accepted, deps.clock.now())
            await uow.tickets.save(updated)
            await _record(uow, updated, cmd.request_id, "ConfirmResolution", cmd.fingerprint)
            uow.emit(_actor(principal), [ev.TicketVerified(updated, cmd.accepted, cmd.comment)])
            await uow.commit()
            return updated

    return await _with_retry_on_duplicate(run)


async def rate_ticket(deps: IntakeDeps, principal: Principal, cmd: RateTicket) -> Ticket:
    validation.check_request_id(cmd.request_id, required=False)
    if cmd.rating is None:
        raise InvalidTicket([FieldViolation("rating", "is required: SATISFIED, NEUTRAL or DISSATISFIED")])
    rating = cmd.rating

    async def run() -> Ticket:
        async with deps.uow() as uow:
            ticket = await _load(uow, cmd.ticket_number, for_update=True)
            authz.can_act_as_requester(principal, ticket, "rate the ticket")
            if await _replay(uow, ticket.organization, cmd.request_id, "RateTicket", cmd.fingerprint):
                return ticket
            org = deps.catalog.organisation(ticket.organization)
            if len(cmd.comment) > org.limits.comment_chars:
                raise InvalidTicket([FieldViolation("comment", f"the limit is {org.limits.comment_chars} characters")])
            updated = ticket.rate(rating, cmd.comment, deps.clock.now())
            await uow.tickets.save(updated)
            await _record(uow, updated, cmd.request_id, "RateTicket", cmd.fingerprint)
            uow.emit(_actor(principal), [ev.TicketRated(updated, rating, cmd.comment)])
            await uow.commit()
            return updated

    return await _with_retry_on_duplicate(run)


async def cancel_ticket(deps: IntakeDeps, principal: Principal, cmd: CancelTicket) -> Ticket:
    validation.check_request_id(cmd.request_id, required=False)

    async def run() -> Ticket:
        async with deps.uow() as uow:
            ticket = await _load(uow, cmd.ticket_number, for_update=True)
            authz.can_cancel(principal, ticket)
            if await _replay(uow, ticket.organization, cmd.request_id, "CancelTicket", cmd.fingerprint):
                return ticket
            updated = ticket.cancel(deps.clock.now())
            await uow.tickets.save(updated)
            await _record(uow, updated, cmd.request_id, "CancelTicket", cmd.fingerprint)
            uow.emit(_actor(principal), [ev.TicketCancelled(updated, cmd.reason)])
            await uow.commit()
            return updated

    return await _with_retry_on_duplicate(run)


async def get_attachment(
    deps: IntakeDeps, principal: Principal, ticket_number: str, attachment_id: str
) -> tuple[AttachmentInfo, bytes]:
    async with deps.uow(read_only=True) as uow:
        ticket = await _load(uow, ticket_number)
        authz.can_see(principal, ticket)
        found = await uow.tickets.attachment(ticket_number, attachment_id)
    if found is None:
        raise TicketNotFound(f"attachment {attachment_id} not found on ticket {ticket_number}")
    return found
