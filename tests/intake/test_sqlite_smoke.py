"""The embedded default: intake on SQLite (no PostgreSQL) submits, numbers and reads tickets, and
its outbox reaches JetStream."""

from __future__ import annotations

import asyncio

import grpc
import nats
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.intake.conftest import auth, running_intake, submission, token


async def test_intake_runs_on_sqlite(sqlite_url: str, nats_url: str) -> None:
    async with running_intake(sqlite_url, nats_url, outbox_poll_seconds=0.1) as service:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.host.port}") as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            numbers = [
                (await stub.SubmitTicket(submission(), metadata=auth(token()))).ticket.ticket_number for _ in range(3)
            ]
            serials = [int(n[-6:]) for n in numbers]
            assert serials == list(range(serials[0], serials[0] + 3))
            got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=numbers[1]), metadata=auth(token()))
            assert got.ticket_number == numbers[1]

        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            seen: set[str] = set()
            sub = await js.subscribe("supportflow.acme.ticket.submitted", ordered_consumer=True)
            deadline = asyncio.get_running_loop().time() + 10
            while not set(numbers) <= seen and asyncio.get_running_loop().time() < deadline:
                try:
                    msg = await sub.next_msg(timeout=1)
                except TimeoutError:
                    continue
                seen.add(events_pb2.Event.FromString(msg.data).ticket_number)
            assert set(numbers) <= seen
        finally:
            await nc.close()
