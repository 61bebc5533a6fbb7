"""SubmitTicket and GetTicket over real gRPC, stored in PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import uuid

import grpc
import pytest
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.intake.conftest import auth, submission, token

NUMBER = re.compile(r"^TS\d{8}\d{6}$")


async def test_submitted_ticket_is_numbered_stored_and_readable(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    tok = token()
    resp = await stub.SubmitTicket(submission(), metadata=auth(tok))
    ticket = resp.ticket
    assert NUMBER.match(ticket.ticket_number), ticket.ticket_number
    assert ticket.status == types_pb2.TICKET_STATUS_PENDING
    assert not ticket.info_incomplete
    assert ticket.attachments[0].sha256 == hashlib.sha256(b"Traceback...").hexdigest()

    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=ticket.ticket_number), metadata=auth(tok))
    assert got.title == "ERP client crashes on month-end export"
    assert got.requester.name == "李雷"
    assert list(got.reproduction_steps) == ["open Ledger", "choose Export → Excel", "client closes"]


async def test_missing_evidence_flags_the_ticket_instead_of_rejecting_it(
    stub: intake_pb2_grpc.IntakeServiceStub,
) -> None:
    req = submission(attachments=[], environment={"os": "Windows 11"})
    ticket = (await stub.SubmitTicket(req, metadata=auth(token()))).ticket
    assert ticket.info_incomplete
    assert list(ticket.missing_info) == ["attachment:screenshot|log", "environment.software_version"]


async def test_retried_request_id_returns_the_same_ticket(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    req = submission()
    first = await stub.SubmitTicket(req, metadata=auth(token()))
    second = await stub.SubmitTicket(req, metadata=auth(token()))
    assert second.ticket.ticket_number == first.ticket.ticket_number
    assert second.replayed
    assert not first.replayed


async def test_request_id_reused_for_other_content_is_rejected(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    rid = str(uuid.uuid4())
    await stub.SubmitTicket(submission(request_id=rid), metadata=auth(token()))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTicket(submission(request_id=rid, title="something else"), metadata=auth(token()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in err.value.details()


async def test_a_ticket_is_linked_to_the_requesters_earlier_tickets(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    requester = f"E{uuid.uuid4().hex[:8]}"
    md = auth(token(roles=("integration",)))

    async def submit_for(who: str) -> str:
        response = await stub.SubmitTicket(submission(requester={"id": who, "name": "韩梅梅"}), metadata=md)
        return response.ticket.ticket_number

    first = await submit_for(requester)
    await submit_for(f"X{uuid.uuid4().hex[:8]}")  # someone else's ticket is not linked
    second = await submit_for(requester)
    third = await stub.SubmitTicket(submission(requester={"id": requester, "name": "韩梅梅"}), metadata=md)
    assert list(third.ticket.related_ticket_numbers) == [second, first], "newest first, only this requester's"
    fetched = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=first), metadata=md)
    assert list(fetched.related_ticket_numbers) == []
