"""Submissions arriving together are stored together (group commit) without mixing up callers:
each gets its own ticket, retries inside one batch replay, and a reused request id fails alone."""

from __future__ import annotations

import asyncio
import re

import grpc
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake
from tests.intake.conftest import auth, submission, token
from tests.intake.workflow_events import StreamTail, published

NUMBER = re.compile(r"^TS\d{8}(?P<serial>\d{6})$")


async def test_a_burst_with_retries_and_one_reused_request_id(
    stub: intake_pb2_grpc.IntakeServiceStub, intake: Intake, tail: StreamTail
) -> None:
    md = auth(token(roles=("integration",)))
    requests = [submission(title=f"burst ticket {i}") for i in range(40)]
    retried = requests[:10]  # sent twice, concurrently: same id, same content
    reused = submission(request_id=requests[10].request_id, title="a different ticket under a used id")
    batches_before = intake.deps.submissions.batches  # type: ignore[attr-defined]

    calls = [stub.SubmitTicket(r, metadata=md, timeout=30) for r in [*requests, *retried, reused]]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    first, again = list(outcomes[:40]), outcomes[40:50]
    # requests[10] and `reused` race for one request id: whichever the service saw first is stored,
    # the other is refused — naming request_id — and nothing else is disturbed by it.
    contested = [first[10], outcomes[50]]
    [winner] = [o for o in contested if isinstance(o, intake_pb2.SubmitTicketResponse)]
    [loser] = [o for o in contested if not isinstance(o, intake_pb2.SubmitTicketResponse)]
    assert isinstance(loser, grpc.aio.AioRpcError)
    assert loser.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (loser.details() or "")
    first[10] = winner
    errors = [o for o in first + list(again) if not isinstance(o, intake_pb2.SubmitTicketResponse)]
    assert not errors, errors
    numbers = [o.ticket.ticket_number for o in first]  # type: ignore[union-attr]
    assert len(set(numbers)) == 40
    serials = sorted(int(NUMBER.match(n)["serial"]) for n in numbers)  # type: ignore[index]
    assert serials == list(range(serials[0], serials[0] + 40)), "numbers of one burst are consecutive"
    for original, retry in zip(first[:10], again, strict=True):
        assert retry.ticket.ticket_number == original.ticket.ticket_number  # type: ignore[union-attr]
        assert {retry.replayed, original.replayed} == {True, False}  # type: ignore[union-attr]
    titles = [o.ticket.title for o in first]  # type: ignore[union-attr]
    assert titles[:10] + titles[11:] == [f"burst ticket {i}" for i in range(40) if i != 10]
    assert titles[10] in ("burst ticket 10", "a different ticket under a used id")

    batches = intake.deps.submissions.batches - batches_before  # type: ignore[attr-defined]
    assert batches < 25, f"51 concurrent submissions took {batches} transactions"
    for number in numbers:
        assert len(await published(intake.engine, tail, number, "ticket.submitted")) == 1
