"""Agents find tickets by what they say: ListTickets' `text` keeps the tickets whose title or
description holds every word, ignoring case, with no wildcards — on PostgreSQL and on the
embedded SQLite alike."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.intake.conftest import auth, running_intake, submission, token

AGENT = auth(token())


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_tickets_are_found_by_the_words_of_their_title_or_description(
    backend: str, database_url: str, sqlite_url: str, nats_url: str
) -> None:
    tag = uuid.uuid4().hex[:10]  # only this test's tickets hold it
    url = database_url if backend == "postgresql" else sqlite_url
    async with (
        running_intake(url, nats_url) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.host.port}") as ch,
    ):
        stub = intake_pb2_grpc.IntakeServiceStub(ch)

        async def submit(title: str, description: str, requester: str = "E1001") -> str:
            request = submission(title=title, description=description, requester={"id": requester, "name": "李雷"})
            who = auth(token(sub=requester, roles=("requester",)))
            return str((await stub.SubmitTicket(request, metadata=who)).ticket.ticket_number)

        async def found(text: str, who: tuple[tuple[str, str], ...] = AGENT) -> list[str]:
            listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(text=text, page_size=200), metadata=who)
            return [t.ticket_number for t in listed.tickets]

        vpn = await submit(f"VPN timeout {tag}", "Connecting from home fails after 30 seconds every time.")
        printer = await submit(
            f"Printer jam {tag}", "Also the vpn client reports a TIMEOUT when printing remotely.", "E2002"
        )
        report = await submit(f"月度报表导出失败 {tag}", "点击导出按钮后客户端无响应，财务无法月结。")
        cpu = await submit(f"100% CPU_load {tag}", "The ERP server has been at full load since the patch.")

        assert await found(f"vpn timeout {tag}") == [printer, vpn]  # title or description, any case; newest first
        assert await found(f"{tag} jam vpn") == [printer]  # every word
        assert await found(f"{tag} 报表 导出") == [report]
        assert await found(f"{tag} 100%") == [cpu]
        assert await found(f"{tag} 1_0") == []  # "_" and "%" are characters, not wildcards
        assert await found(f"{tag} cpu_load") == [cpu]
        assert await found(f"{tag} nothing-like-this") == []
        # A requester searches their own tickets only.
        assert await found(f"vpn {tag}", auth(token(sub="E1001", roles=("requester",)))) == [vpn]


async def test_a_search_of_too_many_or_too_long_words_is_refused_naming_text(database_url: str, nats_url: str) -> None:
    async with (
        running_intake(database_url, nats_url) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.host.port}") as ch,
    ):
        stub = intake_pb2_grpc.IntakeServiceStub(ch)
        for text, says in ((" ".join(f"w{i}" for i in range(11)), "at most 10 words"), ("x" * 101, "at most 100")):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.ListTickets(intake_pb2.ListTicketsRequest(text=text), metadata=AGENT)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            status = rpc_status.from_call(error.value)
            assert status is not None
            bad = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad)
            [violation] = bad.field_violations
            assert violation.field == "text"
            assert says in violation.description
