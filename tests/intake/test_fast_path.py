"""On PostgreSQL, submissions are stored through asyncpg directly (adapters/pg_submissions.py);
everything else, and SQLite, goes through SQLAlchemy (adapters/unit_of_work.py). What a user sees
must not depend on which path stored a ticket, and the direct path's own connections must survive
what the pool's survive: a database connection that dies costs no submission."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2_grpc

from services.intake.adapters import tables
from services.intake.adapters.pg_submissions import PgSubmissionUnitOfWorkFactory
from services.intake.adapters.unit_of_work import SqlUnitOfWorkFactory
from services.intake.application.commands import SubmitTicket
from services.intake.application.handlers import submit_ticket
from services.intake.application.ports import SubmissionUnitOfWorkFactory
from services.intake.application.submitting import Submitted, commit_submissions
from services.intake.bootstrap import Intake
from services.intake.domain.model import Ticket
from services.intake.entrypoints.translate import fingerprint, submission_from
from services.kit.auth import Principal
from services.kit.pg_direct import DirectConnections, asyncpg_dsn
from tests.intake.conftest import auth, submission, token


class _Capture:
    """A submission queue that hands the prepared submission back instead of storing it."""

    def __init__(self) -> None:
        self.items: list[object] = []

    async def submit(self, item: object) -> Submitted:
        self.items.append(item)
        raise _Captured


class _Captured(Exception):
    pass


async def _pending(intake: Intake, title: str, requester_id: str) -> object:
    """A validated submission exactly as SubmitTicket prepares it."""
    capture = _Capture()
    deps = dataclasses.replace(intake.deps, submissions=capture)
    principal = Principal(subject="portal-gateway", org="acme", roles=frozenset({"integration"}))
    req = submission(title=title, requester={"id": requester_id, "name": "李雷", "vip": True})
    with pytest.raises(_Captured):
        await submit_ticket(
            deps, principal, SubmitTicket(req.request_id, fingerprint(req, principal), submission_from(req))
        )
    return capture.items[0]


def _comparable(ticket: Ticket) -> Ticket:
    """A stored ticket without what differs by construction (number, generated ids, times)."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return dataclasses.replace(
        ticket,
        ticket_number="",
        related_ticket_numbers=(),
        submitted_at=epoch,
        updated_at=epoch,
        attachments=tuple(dataclasses.replace(a, attachment_id="", uploaded_at=epoch) for a in ticket.attachments),
        timeline=(),  # compared on its own: its summary repeats the title
    )


async def test_both_paths_store_the_same_ticket_events_and_timeline(intake: Intake) -> None:
    uow = intake.deps.uow
    assert isinstance(uow, SqlUnitOfWorkFactory)
    direct = DirectConnections(str(intake.settings.database_url))
    paths: dict[str, SubmissionUnitOfWorkFactory] = {
        "direct": PgSubmissionUnitOfWorkFactory(direct, intake.deps.clock, lambda: None),
        "sqlalchemy": uow,
    }
    stored: dict[str, Ticket] = {}
    try:
        for name, batch_uow in paths.items():
            first = await _pending(intake, f"fast-path twin ({name}) earlier", f"twin-{name}")
            second = await _pending(intake, f"fast-path twin ({name})", f"twin-{name}")
            results = await commit_submissions(batch_uow, uow, [first, second])  # type: ignore[list-item]
            assert all(isinstance(r, Submitted) for r in results), results
            number = results[1].ticket.ticket_number  # type: ignore[union-attr]
            async with uow() as reader:
                ticket = await reader.tickets.get(number)
            assert ticket is not None
            # The related-ticket look-up found the requester's earlier ticket of the same batch.
            assert ticket.related_ticket_numbers == (results[0].ticket.ticket_number,)  # type: ignore[union-attr]
            stored[name] = ticket
            async with intake.engine.connect() as conn:
                payloads = (await conn.execute(select(tables.outbox.c.payload))).scalars()
                events = [events_pb2.Event.FromString(p) for p in payloads]
            mine = [e for e in events if e.ticket_number == number]
            if mine:  # the relay may already have published (and deleted) it: then it is on the stream
                assert [e.type for e in mine] == ["ticket.submitted"]
                assert mine[0].ticket_submitted.title == ticket.title
    finally:
        await direct.close()

    direct_ticket, portable = stored["direct"], stored["sqlalchemy"]
    assert direct_ticket.title.replace("direct", "sqlalchemy") == portable.title
    assert _comparable(dataclasses.replace(direct_ticket, title="", requester=portable.requester)) == _comparable(
        dataclasses.replace(portable, title="")
    )
    assert direct_ticket.requester == dataclasses.replace(portable.requester, id=direct_ticket.requester.id)
    assert [e.event_type for e in direct_ticket.timeline] == ["ticket.submitted"]
    assert direct_ticket.timeline[0].summary == f"submitted: {direct_ticket.title}"
    assert direct_ticket.submitted_at.tzinfo is not None
    assert direct_ticket.submitted_at <= datetime.now(UTC)


async def test_a_killed_database_connection_costs_no_submission(
    stub: intake_pb2_grpc.IntakeServiceStub, intake: Intake
) -> None:
    md = auth(token(roles=("integration",)))
    before = await stub.SubmitTicket(submission(title="before the connection dies"), metadata=md, timeout=30)

    # What a database failover or an idle-connection reaper does: every connection of this
    # service's database is terminated by the server.
    async with intake.engine.connect() as conn:
        killed = (
            await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).scalar_one()
    assert killed >= 1

    after = await stub.SubmitTicket(submission(title="after the connection died"), metadata=md, timeout=30)
    assert int(after.ticket.ticket_number[-6:]) == int(before.ticket.ticket_number[-6:]) + 1
    again = await stub.SubmitTicket(submission(title="and once more"), metadata=md, timeout=30)
    assert int(again.ticket.ticket_number[-6:]) == int(after.ticket.ticket_number[-6:]) + 1


def test_the_direct_path_connects_with_the_settings_url_credentials_and_options() -> None:
    dsn = asyncpg_dsn("postgresql+asyncpg://sf:s%40cret@db.internal:6432/supportflow?ssl=require")
    assert dsn == "postgresql://sf:s%40cret@db.internal:6432/supportflow?ssl=require"
