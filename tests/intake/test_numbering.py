"""Numbering a ticket: past a day's six-digit serials (the SOP's `TS` + date + 6 digits runs out at
999,999 tickets a day) intake goes on with seven digits instead of refusing or reusing a number;
and a numbered ticket is the draft with its number, nothing else changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import grpc
import pytest
from sqlalchemy import insert
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.adapters import tables
from services.intake.bootstrap import Intake
from services.intake.domain.model import (
    Actor,
    AttachmentInfo,
    Comment,
    Priority,
    Rating,
    Ticket,
    TicketStatus,
    TimelineEntry,
)
from services.intake.domain.submission import Contact, Environment, Requester
from tests.intake.conftest import auth, running_intake, submission, token


@pytest.fixture
async def fresh_intake(fresh_database_url: str, nats_url: str) -> AsyncIterator[Intake]:
    async with running_intake(fresh_database_url, nats_url) as service:
        yield service


async def test_after_serial_999999_numbers_go_on_with_seven_digits(fresh_intake: Intake) -> None:
    org = fresh_intake.deps.catalog.organisation("acme")
    day = datetime.now(UTC).astimezone(org.time_zone).strftime("%Y%m%d")
    async with fresh_intake.engine.begin() as conn:  # the day's counter as after 999,998 tickets
        await conn.execute(insert(tables.ticket_counters).values(organization="acme", day=day, last_serial=999_998))

    md = auth(token(roles=("integration",)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fresh_intake.host.port}") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        numbers = [(await stub.SubmitTicket(submission(), metadata=md)).ticket.ticket_number for _ in range(3)]
        assert numbers == [f"TS{day}999999", f"TS{day}1000000", f"TS{day}1000001"]

        fetched = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=numbers[1]), metadata=md)
        assert fetched.ticket_number == numbers[1]
        listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(), metadata=md)
        assert [t.ticket_number for t in listed.tickets] == numbers[::-1], "newest first, not by text order"


def test_a_numbered_ticket_keeps_everything_the_draft_had() -> None:
    """`Ticket.numbered` copies field by field for speed: no field may be lost or mixed up."""
    at = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    who = Actor("E1001", "requester")
    draft = Ticket(
        ticket_number="",
        organization="acme",
        status=TicketStatus.IN_PROGRESS,
        title="VPN drops",
        requester=Requester("E1001", "李雷", "Finance", "ACME", vip=True),
        contact=Contact("+86 138", "li@acme.example", "lilei"),
        channel="im",
        problem_type="network",
        impact_scope="single_user",
        urgency="high",
        description="drops every hour",
        environment=Environment("T14", "Windows 11", "VPN", "5.1"),
        submitted_at=at,
        updated_at=at,
        occurred_at=at,
        expected_resolution_at=at,
        reproduction_steps=("connect", "wait"),
        labels=("vpn",),
        attachments=(AttachmentInfo("a1", "log.txt", "text/plain", 3, "ab" * 32, "log", at),),
        missing_info=("environment.software_version",),
        related_ticket_numbers=("stale",),
        priority=Priority.P1,
        category="network",
        team="network",
        assignee="agent-7",
        rating=Rating.NEUTRAL,
        rating_comment="ok",
        submitted_by="portal",
        timeline=(TimelineEntry(at, "ticket.submitted", who, "submitted"),),
        comments=(Comment("c1", "", who, "more detail", at),),
    )
    stored = draft.numbered("TS20261122000001", ("TS20261121000009",))
    assert stored == replace(draft, ticket_number="TS20261122000001", related_ticket_numbers=("TS20261121000009",))
    assert draft.ticket_number == "", "the draft itself is unchanged"
