"""Authentication and authorisation over real gRPC with real tokens; ListTickets paging."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake
from services.kit.auth import mint_token
from tests.intake.conftest import auth, submission, token
from tests.intake.test_bad_input import described

Stub = intake_pb2_grpc.IntakeServiceStub


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def failing(call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, f"{err.value.code()}: {err.value.details()}"
    return err.value


async def submit_for(stub: Stub, requester_id: str, tok: str = "") -> intake_pb2.Ticket:
    req = submission(requester={"id": requester_id, "name": "Han Meimei"})
    return (await stub.SubmitTicket(req, metadata=auth(tok or token()))).ticket


# ---- authentication ----


async def test_no_token_is_unauthenticated(stub: Stub) -> None:
    err = await failing(stub.SubmitTicket(submission()), grpc.StatusCode.UNAUTHENTICATED)
    assert "authorization" in err.details()


async def test_malformed_authorization_header_is_unauthenticated(stub: Stub) -> None:
    await failing(
        stub.SubmitTicket(submission(), metadata=(("authorization", "Basic x"),)), grpc.StatusCode.UNAUTHENTICATED
    )
    await failing(
        stub.SubmitTicket(submission(), metadata=(("authorization", "Bearer "),)), grpc.StatusCode.UNAUTHENTICATED
    )


async def test_token_signed_with_another_secret_is_unauthenticated(stub: Stub) -> None:
    forged = mint_token(
        secret="some-other-secret-0123456789-abcdefghij", subject="agent-1", org="acme", roles=("agent",)
    )
    err = await failing(stub.SubmitTicket(submission(), metadata=auth(forged)), grpc.StatusCode.UNAUTHENTICATED)
    assert "signature" in err.details()


async def test_expired_token_is_unauthenticated(stub: Stub) -> None:
    old = token(now=time.time() - 100_000, ttl_seconds=60)
    err = await failing(stub.SubmitTicket(submission(), metadata=auth(old)), grpc.StatusCode.UNAUTHENTICATED)
    assert "expired" in err.details()


async def test_unauthenticated_calls_create_nothing(stub: Stub) -> None:
    rid = str(uuid.uuid4())
    await failing(stub.SubmitTicket(submission(request_id=rid)), grpc.StatusCode.UNAUTHENTICATED)
    # The same request id is still free: the first authenticated submission is not a replay.
    resp = await stub.SubmitTicket(submission(request_id=rid), metadata=auth(token()))
    assert not resp.replayed


async def test_health_check_needs_no_token(intake: Intake) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{intake.host.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "supportflow.intake.v1.IntakeService"):
            resp = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


# ---- authorisation ----


async def test_token_of_another_organisation_cannot_submit(stub: Stub) -> None:
    err = await failing(
        stub.SubmitTicket(submission(organization="acme"), metadata=auth(token(org="globex"))),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "globex" in err.details()


async def test_requester_submits_only_for_themselves(stub: Stub) -> None:
    me = uid("E")
    mine = token(sub=me, roles=("requester",))
    own = await submit_for(stub, me, mine)
    assert own.requester.id == me
    # An empty requester.id is filled in from the token.
    blank = await stub.SubmitTicket(submission(requester={"name": "Han Meimei"}), metadata=auth(mine))
    assert blank.ticket.requester.id == me

    err = await failing(
        stub.SubmitTicket(submission(requester={"id": uid("E"), "name": "X"}), metadata=auth(mine)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "requester" in err.details()


async def test_requester_submitting_as_e1001_is_allowed(stub: Stub) -> None:
    tok = token(sub="E1001", roles=("requester",))
    ticket = (await stub.SubmitTicket(submission(), metadata=auth(tok))).ticket
    assert ticket.requester.id == "E1001"
    await failing(
        stub.SubmitTicket(submission(requester={"id": "E1002", "name": "韩梅梅"}), metadata=auth(tok)),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_requester_cannot_read_another_requesters_ticket(stub: Stub) -> None:
    owner, other = uid("E"), uid("E")
    ticket = await submit_for(stub, owner)
    got = await stub.GetTicket(
        intake_pb2.GetTicketRequest(ticket_number=ticket.ticket_number),
        metadata=auth(token(sub=owner, roles=("requester",))),
    )
    assert got.ticket_number == ticket.ticket_number
    await failing(
        stub.GetTicket(
            intake_pb2.GetTicketRequest(ticket_number=ticket.ticket_number),
            metadata=auth(token(sub=other, roles=("requester",))),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_other_organisation_sees_not_found_like_a_missing_ticket(stub: Stub) -> None:
    ticket = await submit_for(stub, uid("E"))
    globex = auth(token(sub="gx-agent", org="globex"))
    hidden = await failing(
        stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=ticket.ticket_number), metadata=globex),
        grpc.StatusCode.NOT_FOUND,
    )
    missing_number = "TS19990101999999"
    missing = await failing(
        stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=missing_number), metadata=globex),
        grpc.StatusCode.NOT_FOUND,
    )
    # Same answer as for a ticket that does not exist: nothing about the other organisation leaks.
    assert hidden.details().replace(ticket.ticket_number, "N") == missing.details().replace(missing_number, "N")
    assert "acme" not in hidden.details()


async def test_requester_lists_only_their_own_tickets(stub: Stub) -> None:
    me, someone = uid("E"), uid("E")
    mine = {(await submit_for(stub, me)).ticket_number for _ in range(2)}
    theirs = (await submit_for(stub, someone)).ticket_number

    as_me = auth(token(sub=me, roles=("requester",)))
    listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(page_size=200), metadata=as_me)
    assert {t.ticket_number for t in listed.tickets} == mine
    assert all(t.requester.id == me for t in listed.tickets)
    assert theirs not in {t.ticket_number for t in listed.tickets}

    await failing(
        stub.ListTickets(intake_pb2.ListTicketsRequest(requester_id=someone), metadata=as_me),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_agent_lists_other_peoples_tickets(stub: Stub) -> None:
    a, b = uid("E"), uid("E")
    ta, tb = await submit_for(stub, a), await submit_for(stub, b)
    listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(page_size=200), metadata=auth(token()))
    numbers = {t.ticket_number for t in listed.tickets}
    assert {ta.ticket_number, tb.ticket_number} <= numbers
    only_b = await stub.ListTickets(intake_pb2.ListTicketsRequest(requester_id=b), metadata=auth(token()))
    assert [t.ticket_number for t in only_b.tickets] == [tb.ticket_number]


async def test_agent_of_another_organisation_lists_none_of_acmes_tickets(stub: Stub) -> None:
    ticket = await submit_for(stub, uid("E"))
    globex = auth(token(sub="gx-agent", org="globex"))
    listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(page_size=200), metadata=globex)
    assert ticket.ticket_number not in {t.ticket_number for t in listed.tickets}
    assert all(t.organization == "globex" for t in listed.tickets)
    await failing(
        stub.ListTickets(intake_pb2.ListTicketsRequest(organization="acme"), metadata=globex),
        grpc.StatusCode.PERMISSION_DENIED,
    )


# ---- paging ----


async def test_list_tickets_pages_are_stable_and_newest_first(stub: Stub) -> None:
    who = uid("PAGE")
    submitted = [(await submit_for(stub, who)).ticket_number for _ in range(7)]
    agent = auth(token())

    pages: list[list[str]] = []
    page_token = ""
    first_token = ""
    while True:
        resp = await stub.ListTickets(
            intake_pb2.ListTicketsRequest(requester_id=who, page_size=3, page_token=page_token), metadata=agent
        )
        pages.append([t.ticket_number for t in resp.tickets])
        first_token = first_token or resp.next_page_token
        if not resp.next_page_token:
            break
        page_token = resp.next_page_token
        assert len(pages) < 5, "paging does not end"

    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [n for p in pages for n in p]
    assert len(set(flat)) == 7
    assert flat == list(reversed(submitted))

    # A page token replayed with the same filters gives the same page again.
    again = await stub.ListTickets(
        intake_pb2.ListTicketsRequest(requester_id=who, page_size=3, page_token=first_token), metadata=agent
    )
    assert [t.ticket_number for t in again.tickets] == pages[1]

    err = await failing(
        stub.ListTickets(
            intake_pb2.ListTicketsRequest(
                requester_id=who, statuses=[types_pb2.TICKET_STATUS_PENDING], page_size=3, page_token=first_token
            ),
            metadata=agent,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "different filters" in described(err, "page_token")


async def test_forged_page_token_is_rejected(stub: Stub) -> None:
    err = await failing(
        stub.ListTickets(intake_pb2.ListTicketsRequest(page_token="not-a-token!"), metadata=auth(token())),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    described(err, "page_token")
