"""Intake's read model: workflow events published to the real JetStream stream move the ticket that
GetTicket and ListTickets show (status, priority, team, assignee, timeline), each event once, and
bad events neither stop the projection nor vanish silently."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.adapters import tables
from services.intake.bootstrap import Intake
from tests.intake.conftest import auth, intake_env, submission, token
from tests.intake.workflow_events import Workflow, has_entry, ticket_when, until, workflow, workflow_event
from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer

Stub = intake_pb2_grpc.IntakeServiceStub
S = types_pb2


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def submit(stub: Stub, requester_id: str) -> str:
    req = submission(requester={"id": requester_id, "name": "Han Meimei"})
    resp = await stub.SubmitTicket(req, metadata=auth(token(sub=requester_id, roles=("requester",))))
    return str(resp.ticket.ticket_number)


def classified(team: str, priority: int = S.PRIORITY_P1) -> events_pb2.TicketClassified:
    return events_pb2.TicketClassified(
        priority=priority,
        category="software",
        team=team,
        candidate_groups=[team],
        matched_rules=[events_pb2.MatchedRule(decision_id="priority", rule_id="R-7")],
    )


async def dead_letter_at(intake: Intake, sequence: int) -> dict[str, object] | None:
    async with intake.engine.connect() as conn:
        row = (
            await conn.execute(select(tables.dead_letters).where(tables.dead_letters.c.stream_sequence == sequence))
        ).first()
    return dict(row._mapping) if row is not None else None


async def test_workflow_events_move_the_ticket_from_submitted_to_closed(stub: Stub, wf: Workflow) -> None:
    me = uid("E")
    mine = token(sub=me, roles=("requester",))
    number = await submit(stub, me)
    team = uid("app")

    got = await ticket_when(stub, number, has_entry("ticket.submitted"), mine)
    assert got.status == S.TICKET_STATUS_PENDING
    assert got.priority == S.PRIORITY_UNSPECIFIED
    assert (got.team, got.assignee) == ("", "")

    events = [await wf.publish(number, classified(team))]
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_ACCEPTED, mine)
    assert got.status == S.TICKET_STATUS_ACCEPTED
    assert (got.priority, got.team, got.category) == (S.PRIORITY_P1, team, "software")

    events.append(
        await wf.publish(number, events_pb2.TaskCreated(task_id="t1", name="Diagnose", candidate_groups=[team]))
    )
    got = await ticket_when(stub, number, has_entry("task.created"), mine)
    assert got.status == S.TICKET_STATUS_ACCEPTED
    assert got.assignee == ""

    events.append(await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="agent-7")))
    got = await ticket_when(stub, number, lambda t: t.assignee == "agent-7", mine)
    assert (got.assignee, got.team, got.status) == ("agent-7", team, S.TICKET_STATUS_ACCEPTED)

    events.append(
        await wf.publish(number, events_pb2.TaskClaimed(task_id="t1", assignee="agent-8"), actor=("agent-8", "agent"))
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS, mine)
    assert (got.status, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, "agent-8")

    events.append(
        await wf.publish(
            number,
            events_pb2.TicketResolved(resolved_by="agent-8", summary="ERP patched to 9.1.3"),
            actor=("agent-8", "agent"),
        )
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_RESOLVED, mine)
    assert got.status == S.TICKET_STATUS_RESOLVED

    events.append(await wf.publish(number, events_pb2.TicketClosed(outcome="completed")))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_CLOSED, mine)
    assert got.status == S.TICKET_STATUS_CLOSED
    assert got.updated_at == events[-1].occurred_at
    # Everything the process did stays visible.
    assert (got.priority, got.team, got.assignee) == (S.PRIORITY_P1, team, "agent-8")

    timeline = list(got.timeline)
    assert [e.event_type for e in timeline] == [
        "ticket.submitted",
        "ticket.classified",
        "task.created",
        "ticket.assigned",
        "task.claimed",
        "ticket.resolved",
        "ticket.closed",
    ]
    assert (timeline[0].actor.subject, timeline[0].actor.role) == (me, "requester")
    assert timeline[0].summary == "submitted: ERP client crashes on month-end export"
    for entry, event in zip(timeline[1:], events, strict=True):
        assert entry.at == event.occurred_at
        assert (entry.actor.subject, entry.actor.role) == (event.actor.subject, event.actor.role)
    assert [e.summary for e in timeline[1:]] == [
        f"classified P1 → {team} (rules R-7)",
        f"task 'Diagnose' created for {team}",
        "assigned to agent-7",
        "task claimed by agent-8",
        "resolved: ERP patched to 9.1.3",
        "ticket closed",
    ]


async def test_information_request_escalation_and_sla_show_on_the_ticket(stub: Stub, wf: Workflow) -> None:
    me = uid("E")
    number = await submit(stub, me)
    team = uid("net")

    await wf.publish(number, events_pb2.TicketInfoRequested(missing_info=["environment.software_version", "log"]))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER)
    assert got.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER
    assert got.timeline[-1].summary == "information requested: environment.software_version, log"

    await wf.publish(number, events_pb2.TicketAssigned(team=team))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_ACCEPTED)
    assert (got.status, got.team, got.assignee) == (S.TICKET_STATUS_ACCEPTED, team, "")
    assert got.timeline[-1].summary == f"assigned to {team}"

    await wf.publish(number, events_pb2.SlaWarning(clock="resolve", remaining_seconds=600))
    got = await ticket_when(stub, number, has_entry("sla.warning"))
    assert got.status == S.TICKET_STATUS_ACCEPTED
    assert got.timeline[-1].summary == "warning: resolve clock"

    escalated = await wf.publish(
        number,
        events_pb2.TicketEscalated(from_tier="tier1", to_tier="tier2", automatic=True, reason="resolve clock breached"),
        actor=("system", "system"),
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS)
    assert got.status == S.TICKET_STATUS_IN_PROGRESS
    last = got.timeline[-1]
    assert (last.event_type, last.summary) == ("ticket.escalated", "escalated tier1 → tier2 (automatic)")
    assert (last.actor.subject, last.actor.role, last.at) == ("system", "system", escalated.occurred_at)


async def test_list_tickets_filters_on_what_the_workflow_decided(stub: Stub, wf: Workflow) -> None:
    me = uid("E")
    number, other = await submit(stub, me), await submit(stub, me)
    team = uid("erp")
    agent = auth(token())

    await wf.publish(number, classified(team, S.PRIORITY_P0))
    await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_ACCEPTED)

    async def listed(**filters: object) -> list[str]:
        resp = await stub.ListTickets(intake_pb2.ListTicketsRequest(page_size=200, **filters), metadata=agent)
        return [t.ticket_number for t in resp.tickets]

    assert await listed(team=team) == [number]
    assert await listed(requester_id=me, priority=S.PRIORITY_P0) == [number]
    assert await listed(requester_id=me, statuses=[S.TICKET_STATUS_ACCEPTED]) == [number]
    assert await listed(requester_id=me, statuses=[S.TICKET_STATUS_PENDING]) == [other]
    assert await listed(requester_id=me, priority=S.PRIORITY_P2) == []
    assert await listed(team=team, statuses=[S.TICKET_STATUS_IN_PROGRESS]) == []

    # The requester's own list shows the same projected fields.
    own = await stub.ListTickets(
        intake_pb2.ListTicketsRequest(statuses=[S.TICKET_STATUS_ACCEPTED]),
        metadata=auth(token(sub=me, roles=("requester",))),
    )
    assert [(t.ticket_number, t.priority, t.team) for t in own.tickets] == [(number, S.PRIORITY_P0, team)]


async def test_a_redelivered_event_is_applied_once(stub: Stub, wf: Workflow) -> None:
    number = await submit(stub, uid("E"))
    team = uid("app")

    assigned = await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="agent-7"))
    await ticket_when(stub, number, lambda t: t.assignee == "agent-7")
    await wf.publish(number, events_pb2.TaskClaimed(task_id="t1", assignee="agent-8"), actor=("agent-8", "agent"))
    await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS)

    # The same publish again (a producer retry) is dropped by the stream's duplicate window ...
    assert (await wf.send(assigned)).duplicate
    # ... but the same event under another message id (e.g. after the window) reaches intake again.
    assert not (await wf.send(assigned, msg_id=str(uuid.uuid4()))).duplicate
    sentinel = await wf.publish(number, events_pb2.SlaWarning(clock="resolve"))
    got = await ticket_when(stub, number, has_entry("sla.warning"))

    # Applied again, it would have put the ticket back to "accepted" with agent-7.
    assert (got.status, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, "agent-8")
    assert [e.event_type for e in got.timeline] == [
        "ticket.submitted",
        "ticket.assigned",
        "task.claimed",
        "sla.warning",
    ]
    assert got.timeline[-1].at == sentinel.occurred_at


async def test_unknown_tickets_and_garbage_do_not_stop_the_projection(stub: Stub, wf: Workflow, intake: Intake) -> None:
    number = await submit(stub, uid("E"))
    team = uid("app")

    stranger = await wf.publish("TS19990101" + str(uuid.uuid4().int)[:6], classified(team))
    garbage = b"\xff\xfenot an event " + uuid.uuid4().bytes
    garbage_ack = await wf.raw("supportflow.acme.ticket.classified", garbage)
    nameless = events_pb2.Event(type="ticket.resolved", organization="acme", ticket_number=number)
    nameless.ticket_resolved.summary = "an event without an id"
    nameless_ack = await wf.raw("supportflow.acme.ticket.resolved", nameless.SerializeToString())

    await wf.publish(number, classified(team))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_ACCEPTED)
    assert (got.status, got.team) == (S.TICKET_STATUS_ACCEPTED, team)
    assert [e.event_type for e in got.timeline] == ["ticket.submitted", "ticket.classified"]

    # Both undecodable messages are kept, with their bytes, for someone to look at.
    dead = await until(lambda: dead_letter_at(intake, nameless_ack.seq), lambda row: row is not None)
    assert dead is not None
    assert (dead["consumer"], dead["subject"], dead["event_id"]) == (
        "intake-read-model",
        "supportflow.acme.ticket.resolved",
        None,
    )
    assert dead["payload"] == nameless.SerializeToString()
    assert "without event_id" in str(dead["error"])
    dead = await dead_letter_at(intake, garbage_ack.seq)
    assert dead is not None
    assert (dead["subject"], dead["payload"]) == ("supportflow.acme.ticket.classified", garbage)
    assert str(dead["error"]).startswith("undecodable event")

    # Another installation's ticket is simply not projected: not an error.
    async with intake.engine.connect() as conn:
        dead_for_stranger = await conn.scalar(
            select(func.count())
            .select_from(tables.dead_letters)
            .where(tables.dead_letters.c.event_id == stranger.event_id)
        )
    assert dead_for_stranger == 0


async def test_an_event_whose_payload_contradicts_its_type_is_dead_lettered_at_once(
    stub: Stub, wf: Workflow, intake: Intake
) -> None:
    number = await submit(stub, uid("E"))
    team = uid("app")

    # Says "resolved" but carries a classification: neither reading is safe to apply.
    liar = workflow_event(number, classified(team))
    liar.type = "ticket.resolved"
    ack = await wf.send(liar)

    await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="agent-7"))
    got = await ticket_when(stub, number, lambda t: t.assignee == "agent-7")
    assert (got.status, got.assignee) == (S.TICKET_STATUS_ACCEPTED, "agent-7")
    assert [e.event_type for e in got.timeline] == ["ticket.submitted", "ticket.assigned"]

    # Recorded straight away, not after minutes of retrying an event that can never apply.
    dead = await until(lambda: dead_letter_at(intake, ack.seq), lambda row: row is not None)
    assert dead is not None, "the contradictory event was not dead-lettered (still being retried?)"
    assert dead["event_id"] == liar.event_id
    assert "ticket_classified" in str(dead["error"])


async def test_late_workflow_events_do_not_reopen_a_cancelled_ticket(stub: Stub, wf: Workflow) -> None:
    me = uid("E")
    mine = auth(token(sub=me, roles=("requester",)))
    number = await submit(stub, me)
    cancelled = await stub.CancelTicket(
        intake_pb2.CancelTicketRequest(ticket_number=number, request_id=str(uuid.uuid4()), reason="works again"),
        metadata=mine,
    )
    assert cancelled.status == S.TICKET_STATUS_CANCELLED

    team = uid("app")
    await wf.publish(number, classified(team))
    await wf.publish(number, events_pb2.TaskClaimed(task_id="t1", assignee="agent-8"), actor=("agent-8", "agent"))
    await wf.publish(number, events_pb2.TicketResolved(summary="nothing to do"))
    got = await ticket_when(stub, number, has_entry("ticket.cancelled", "ticket.resolved"))

    assert got.status == S.TICKET_STATUS_CANCELLED
    assert [e.event_type for e in got.timeline] == [
        "ticket.submitted",
        "ticket.cancelled",
        "ticket.classified",
        "task.claimed",
        "ticket.resolved",
    ]
    assert got.timeline[1].summary == "cancelled: works again"


async def lock_waiters(conn: AsyncConnection) -> int:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return int(await conn.scalar(query) or 0)


@pytest.fixture
async def alone(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory
) -> AsyncIterator[tuple[Stub, Workflow, str]]:
    """An intake of its own — its own OS process, database, stream and durable consumer: the race
    below counts lock waiters in the whole database and needs the projection's attention at once."""
    env = intake_env(fresh_database_url, own_nats_server.url, SUPPORTFLOW_GRPC_PORT="{grpc_port}")
    service = service_process_factory("intake-alone", "services.intake", env)
    async with grpc.aio.insecure_channel(service.address) as channel, workflow(own_nats_server.url) as wf:
        yield intake_pb2_grpc.IntakeServiceStub(channel), wf, fresh_database_url


async def test_a_workflow_event_racing_a_cancellation_does_not_undo_it(alone: tuple[Stub, Workflow, str]) -> None:
    """The requester cancels while the workflow's assignment is being projected: whichever commits
    second must see the other's result, so the ticket ends cancelled (and still shows the assignment)."""
    stub, wf, database_url = alone
    me = uid("E")
    number = await submit(stub, me)
    await ticket_when(stub, number, has_entry("ticket.submitted"))
    # The projection is demonstrably running before the race starts.
    await wf.publish(number, events_pb2.TaskCreated(task_id=uid("t"), name="Assign ticket", candidate_groups=["tier1"]))
    await ticket_when(stub, number, has_entry("task.created"))
    team = uid("app")

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as blocker, engine.connect() as watcher:
            # Hold the ticket row so that both writers queue up behind us, cancellation first.
            await blocker.begin()
            await blocker.execute(
                select(tables.tickets.c.status).where(tables.tickets.c.ticket_number == number).with_for_update()
            )
            cancel = asyncio.ensure_future(
                stub.CancelTicket(
                    intake_pb2.CancelTicketRequest(ticket_number=number, request_id=str(uuid.uuid4())),
                    metadata=auth(token(sub=me, roles=("requester",))),
                    timeout=30,
                )
            )
            assert await until(lambda: lock_waiters(watcher), lambda n: n >= 1) == 1
            await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="agent-7"))
            assert await until(lambda: lock_waiters(watcher), lambda n: n >= 2) == 2
            await blocker.rollback()
            assert (await cancel).status == S.TICKET_STATUS_CANCELLED
    finally:
        await engine.dispose()

    got = await ticket_when(stub, number, has_entry("ticket.assigned", "ticket.cancelled"))
    assert got.status == S.TICKET_STATUS_CANCELLED
    assert (got.team, got.assignee) == (team, "agent-7")
