"""Ticket numbering and request idempotency under concurrency: two intake OS processes share one
PostgreSQL database and are called over real gRPC sockets at the same time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from sqlalchemy import func, select, table
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.intake.conftest import auth, intake_env, submission, token
from tests.support.fixtures import ServiceFactory
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

NUMBER = re.compile(r"^TS(?P<day>\d{8})(?P<serial>\d{6})$")
TICKETS = 1000
IN_FLIGHT = 100
CALL_TIMEOUT = 30.0


async def count_tickets(database_url: str) -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table("intake_tickets"))) or 0)
    finally:
        await engine.dispose()


@pytest.fixture
def two_intakes(
    fresh_database_url: str, nats_url: str, service_process_factory: ServiceFactory
) -> tuple[ServiceProcess, ServiceProcess]:
    env = intake_env(fresh_database_url, nats_url, SUPPORTFLOW_GRPC_PORT="{grpc_port}")
    # One after the other: the first applies the migrations to the fresh database.
    first = service_process_factory("intake-a", "services.intake", env)
    second = service_process_factory("intake-b", "services.intake", env)
    return first, second


@pytest.fixture
async def stubs(
    two_intakes: tuple[ServiceProcess, ServiceProcess],
) -> AsyncIterator[list[intake_pb2_grpc.IntakeServiceStub]]:
    channels = [grpc.aio.insecure_channel(p.address) for p in two_intakes]
    try:
        yield [intake_pb2_grpc.IntakeServiceStub(c) for c in channels]
    finally:
        for channel in channels:
            await channel.close()


async def submit_all(
    stubs: Sequence[intake_pb2_grpc.IntakeServiceStub],
    requests: Sequence[intake_pb2.SubmitTicketRequest],
    *,
    offset: int = 0,
) -> list[intake_pb2.SubmitTicketResponse]:
    """Send every request, alternating between the processes, at most IN_FLIGHT at a time."""
    limit = asyncio.Semaphore(IN_FLIGHT)
    metadata = auth(token())

    async def one(i: int, req: intake_pb2.SubmitTicketRequest) -> intake_pb2.SubmitTicketResponse:
        async with limit:
            stub = stubs[(i + offset) % len(stubs)]
            return await stub.SubmitTicket(req, metadata=metadata, timeout=CALL_TIMEOUT)

    return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))


async def test_thousand_concurrent_submissions_get_consecutive_unique_numbers_and_replay(
    stubs: list[intake_pb2_grpc.IntakeServiceStub], fresh_database_url: str
) -> None:
    requests = [submission(title=f"concurrent ticket {i}") for i in range(TICKETS)]
    replies = await submit_all(stubs, requests)

    numbers = [r.ticket.ticket_number for r in replies]
    assert not any(r.replayed for r in replies)
    assert len(set(numbers)) == TICKETS, "duplicate ticket numbers"
    matches = [NUMBER.match(n) for n in numbers]
    assert all(matches), [n for n, m in zip(numbers, matches, strict=True) if not m][:5]
    days = {m.group("day") for m in matches if m}
    assert len(days) == 1, days
    serials = sorted(int(m.group("serial")) for m in matches if m)
    assert serials == list(range(1, TICKETS + 1)), "serials are not exactly 1..1000"
    assert await count_tickets(fresh_database_url) == TICKETS

    # Retry 100 of them (same request id, same content), each on the other process than before.
    retried = list(range(0, TICKETS, TICKETS // 100))
    replays = await submit_all(stubs, [requests[i] for i in retried], offset=1)
    assert all(r.replayed for r in replays)
    assert [r.ticket.ticket_number for r in replays] == [numbers[i] for i in retried]
    assert await count_tickets(fresh_database_url) == TICKETS

    # The same new request sent 20 times at once, to both processes: one ticket, one number.
    same = submission(title="sent twenty times at once")
    burst = await submit_all(stubs, [same] * 20)
    burst_numbers = {r.ticket.ticket_number for r in burst}
    assert len(burst_numbers) == 1, burst_numbers
    assert sum(not r.replayed for r in burst) == 1
    (number,) = burst_numbers
    match = NUMBER.match(number)
    assert match is not None
    assert int(match.group("serial")) == TICKETS + 1
    assert match.group("day") in days
    assert await count_tickets(fresh_database_url) == TICKETS + 1
