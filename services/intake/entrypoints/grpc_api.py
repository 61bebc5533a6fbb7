"""The IntakeService servicer: proto → command → handler → proto, nothing more.

Authentication, request decoding and error mapping happen in the kit's interceptors.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.adapters.event_codec import PRIORITY_FROM_PB, set_attachment
from services.intake.application import commands, handlers
from services.intake.application.handlers import IntakeDeps
from services.intake.application.ports import PageCursor, TicketFilter
from services.intake.domain.errors import InvalidTicket
from services.intake.entrypoints import translate as tr
from services.kit.auth import current_principal
from services.kit.errors import FieldViolation

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MAX_PAGE = 200
DEFAULT_PAGE = 50


class IntakeServicer(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, deps: IntakeDeps) -> None:
        self._deps = deps

    async def SubmitTicket(
        self, request: intake_pb2.SubmitTicketRequest, context: Context
    ) -> intake_pb2.SubmitTicketResponse:
        principal = current_principal()
        cmd = commands.SubmitTicket(request.request_id, tr.fingerprint(request, principal), tr.submission_from(request))
        result = await handlers.submit_ticket(self._deps, principal, cmd)
        return intake_pb2.SubmitTicketResponse(ticket=tr.ticket_pb(result.ticket), replayed=result.replayed)

    async def GetTicket(self, request: intake_pb2.GetTicketRequest, context: Context) -> intake_pb2.Ticket:
        ticket = await handlers.get_ticket(self._deps, current_principal(), request.ticket_number)
        return tr.ticket_pb(ticket)

    async def ListTickets(
        self, request: intake_pb2.ListTicketsRequest, context: Context
    ) -> intake_pb2.ListTicketsResponse:
        principal = current_principal()
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidTicket(
                [FieldViolation("page_size", f"must be between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})")]
            )
        size = request.page_size or DEFAULT_PAGE
        key = tr.filter_key(request)
        flt = TicketFilter(
            organization=request.organization or principal.org,
            statuses=tuple(tr.STATUS_FROM_PB[s] for s in request.statuses if s in tr.STATUS_FROM_PB),
            priority=PRIORITY_FROM_PB.get(request.priority),
            team=request.team,
            requester_id=request.requester_id,
            assignee=request.assignee,
            words=tr.search_words(request.text),
            submitted_after=tr._dt(request, "submitted_after"),
            submitted_before=tr._dt(request, "submitted_before"),
        )
        tickets = await handlers.list_tickets(
            self._deps, principal, flt, tr.decode_page_token(request.page_token, key), size + 1
        )
        page, more = tickets[:size], len(tickets) > size
        token = tr.encode_page_token(PageCursor(page[-1].submitted_at, page[-1].ticket_number), key) if more else ""
        return intake_pb2.ListTicketsResponse(tickets=[tr.ticket_pb(t) for t in page], next_page_token=token)

    async def SupplementTicket(
        self, request: intake_pb2.SupplementTicketRequest, context: Context
    ) -> intake_pb2.Ticket:
        principal = current_principal()
        cmd = commands.SupplementTicket(
            request.ticket_number, request.request_id, tr.fingerprint(request, principal), tr.supplement_from(request)
        )
        return tr.ticket_pb(await handlers.supplement_ticket(self._deps, principal, cmd))

    async def AddComment(self, request: intake_pb2.AddCommentRequest, context: Context) -> intake_pb2.Comment:
        principal = current_principal()
        cmd = commands.AddComment(
            request.ticket_number,
            request.request_id,
            tr.fingerprint(request, principal),
            request.body,
            tr.attachments_from(request.attachments),
        )
        return tr.comment_pb(await handlers.add_comment(self._deps, principal, cmd))

    async def ConfirmResolution(
        self, request: intake_pb2.ConfirmResolutionRequest, context: Context
    ) -> intake_pb2.Ticket:
        principal = current_principal()
        cmd = commands.ConfirmResolution(
            request.ticket_number,
            request.request_id,
            tr.fingerprint(request, principal),
            request.accepted,
            request.comment,
        )
        return tr.ticket_pb(await handlers.confirm_resolution(self._deps, principal, cmd))

    async def RateTicket(self, request: intake_pb2.RateTicketRequest, context: Context) -> intake_pb2.Ticket:
        principal = current_principal()
        cmd = commands.RateTicket(
            request.ticket_number,
            request.request_id,
            tr.fingerprint(request, principal),
            tr.rating_from(request.rating),
            request.comment,
        )
        return tr.ticket_pb(await handlers.rate_ticket(self._deps, principal, cmd))

    async def CancelTicket(self, request: intake_pb2.CancelTicketRequest, context: Context) -> intake_pb2.Ticket:
        principal = current_principal()
        cmd = commands.CancelTicket(
            request.ticket_number, request.request_id, tr.fingerprint(request, principal), request.reason
        )
        return tr.ticket_pb(await handlers.cancel_ticket(self._deps, principal, cmd))

    async def GetAttachment(
        self, request: intake_pb2.GetAttachmentRequest, context: Context
    ) -> intake_pb2.GetAttachmentResponse:
        info, content = await handlers.get_attachment(
            self._deps, current_principal(), request.ticket_number, request.attachment_id
        )
        response = intake_pb2.GetAttachmentResponse(content=content)
        set_attachment(response.attachment, info)
        return response
