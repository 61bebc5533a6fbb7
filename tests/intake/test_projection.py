"""Intake's read model: workflow events published to the real JetStream stream move the ticket that
GetTicket and ListTickets show (status, priority, team, assignee, timeline), each event once, and
bad events neither stop the projection nor vanish silently. The status only moves forward along the
SOP's lifecycle (back only where the SOP sends a ticket back), and the assignee is the ticket's handler
as the workflow's assignments name it, never whoever claimed a task."""

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
from tests.intake.workflow_events import Workflow, has_entry, resolve, ticket_when, until, workflow, workflow_event
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


def as_(subject: str, role: str = "agent") -> tuple[str, str]:
    return (subject, role)


async def assign_and_start(wf: Workflow, stub: Stub, number: str, team: str, handler: str = "agent-7") -> None:
    """What the default bundle does from classification to the handler's first work: the dispatcher
    claims and completes *Assign ticket* naming the handler, the handler completes *Diagnose*."""
    await wf.publish(number, classified(team))
    await wf.publish(number, events_pb2.TaskClaimed(task_id="t-assign", assignee="lead-1"), actor=as_("lead-1"))
    await wf.publish(
        number,
        events_pb2.TaskCompleted(task_id="t-assign", name="Assign ticket", completed_by="lead-1"),
        actor=as_("lead-1"),
    )
    await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee=handler), actor=as_("lead-1"))
    await wf.publish(
        number,
        events_pb2.TaskCompleted(task_id="t-diagnose", name="Diagnose (tier 1)", completed_by=handler),
        actor=as_(handler),
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS)
    assert (got.status, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, handler)


async def test_workflow_events_move_the_ticket_forward_from_submitted_to_closed(stub: Stub, wf: Workflow) -> None:
    """The default bundle's order of events: classified → (dispatcher claims and completes the
    assignment) → assigned → the handler's first work → resolved → closed."""
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
    assert got.status == S.TICKET_STATUS_ACCEPTED  # 已受理: classified and routed to a team
    assert (got.priority, got.team, got.category) == (S.PRIORITY_P1, team, "software")

    # The dispatcher takes the assignment task: routing the ticket is not handling it.
    events.append(
        await wf.publish(
            number, events_pb2.TaskCreated(task_id="t-assign", name="Assign ticket", candidate_groups=[team])
        )
    )
    events.append(
        await wf.publish(
            number, events_pb2.TaskClaimed(task_id="t-assign", assignee="lead-1"), actor=as_("lead-1", "team_lead")
        )
    )
    events.append(
        await wf.publish(
            number,
            events_pb2.TaskCompleted(task_id="t-assign", name="Assign ticket", completed_by="lead-1"),
            actor=as_("lead-1", "team_lead"),
        )
    )
    got = await ticket_when(stub, number, has_entry("task.completed"), mine)
    assert (got.status, got.assignee) == (S.TICKET_STATUS_ACCEPTED, "")

    # The assignment names the handler (SOP §4): still accepted until somebody works on it.
    events.append(
        await wf.publish(
            number,
            events_pb2.TicketAssigned(team=team, assignee="agent-7", co_handlers=["ops-1", "agent-9"]),
            actor=as_("lead-1", "team_lead"),
        )
    )
    got = await ticket_when(stub, number, lambda t: t.assignee == "agent-7", mine)
    assert (got.assignee, got.team, got.status) == ("agent-7", team, S.TICKET_STATUS_ACCEPTED)
    assert list(got.co_handlers) == ["ops-1", "agent-9"]

    # The handler's diagnosis (a task given to the handler, completed without a claim): 处理中.
    events.append(
        await wf.publish(
            number, events_pb2.TaskCreated(task_id="t-diagnose", name="Diagnose (tier 1)", assignee="agent-7")
        )
    )
    events.append(
        await wf.publish(
            number,
            events_pb2.TaskCompleted(task_id="t-diagnose", name="Diagnose (tier 1)", completed_by="agent-7"),
            actor=as_("agent-7"),
        )
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS, mine)
    assert (got.status, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, "agent-7")

    events.append(
        await wf.publish(
            number,
            events_pb2.TicketResolved(resolved_by="agent-7", summary="ERP patched to 9.1.3"),
            actor=as_("agent-7"),
        )
    )
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_RESOLVED, mine)
    assert got.status == S.TICKET_STATUS_RESOLVED

    events.append(await wf.publish(number, events_pb2.TicketClosed(outcome="completed")))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_CLOSED, mine)
    assert got.status == S.TICKET_STATUS_CLOSED
    assert got.updated_at == events[-1].occurred_at
    # Everything the process did stays visible.
    assert (got.priority, got.team, got.assignee) == (S.PRIORITY_P1, team, "agent-7")

    timeline = list(got.timeline)
    assert timeline[0].event_type == "ticket.submitted"
    assert (timeline[0].actor.subject, timeline[0].actor.role) == (me, "requester")
    assert timeline[0].summary == "submitted: ERP client crashes on month-end export"
    for entry, event in zip(timeline[1:], events, strict=True):
        assert (entry.event_type, entry.at) == (event.type, event.occurred_at)
        assert (entry.actor.subject, entry.actor.role) == (event.actor.subject, event.actor.role)
    assert [e.summary for e in timeline[1:]] == [
        f"classified P1 → {team} (rules R-7)",
        f"task 'Assign ticket' created for {team}",
        "task claimed by lead-1",
        "task 'Assign ticket' completed by lead-1",
        "assigned to agent-7, co-handlers ops-1, agent-9",
        "task 'Diagnose (tier 1)' created for agent-7",
        "task 'Diagnose (tier 1)' completed by agent-7",
        "resolved: ERP patched to 9.1.3",
        "ticket closed",
    ]


async def test_claims_show_on_the_timeline_but_the_ticket_keeps_its_handler(stub: Stub, wf: Workflow) -> None:
    """A change manager claiming the approval and a reviewer claiming the review work on the ticket
    without handling it: GetTicket and ListTickets still name the handler."""
    me = uid("E")
    number = await submit(stub, me)
    team = uid("app")
    await assign_and_start(wf, stub, number, team)

    await wf.publish(number, events_pb2.ChangeApprovalRequested(task_id="t-approve", author="agent-7"))
    await wf.publish(
        number, events_pb2.TaskClaimed(task_id="t-approve", assignee="cm-1"), actor=as_("cm-1", "change_manager")
    )
    await wf.publish(
        number, events_pb2.ReviewRequested(task_id="t-review", operation="data modification", performer="agent-7")
    )
    await wf.publish(number, events_pb2.TaskClaimed(task_id="t-review", assignee="reviewer-1"), actor=as_("reviewer-1"))
    got = await ticket_when(stub, number, lambda t: [e.event_type for e in t.timeline].count("task.claimed") == 3)

    assert (got.status, got.assignee, got.team) == (S.TICKET_STATUS_IN_PROGRESS, "agent-7", team)
    claims = [(e.actor.subject, e.actor.role, e.summary) for e in got.timeline if e.event_type == "task.claimed"]
    assert claims == [
        ("lead-1", "agent", "task claimed by lead-1"),
        ("cm-1", "change_manager", "task claimed by cm-1"),
        ("reviewer-1", "agent", "task claimed by reviewer-1"),
    ]
    listed = await stub.ListTickets(intake_pb2.ListTicketsRequest(requester_id=me, team=team), metadata=auth(token()))
    assert [(t.ticket_number, t.assignee, t.status) for t in listed.tickets] == [
        (number, "agent-7", S.TICKET_STATUS_IN_PROGRESS)
    ]


async def test_an_agent_lists_the_tickets_they_handle(stub: Stub, wf: Workflow) -> None:
    handler, colleague = uid("agent"), uid("agent")
    me = uid("E")
    numbers = [await submit(stub, me) for _ in range(3)]
    for number, who in zip(numbers, (handler, colleague, handler), strict=True):
        await wf.publish(number, events_pb2.TicketAssigned(team="app", assignee=who), actor=as_("lead-1"))
    for number in numbers:
        await ticket_when(stub, number, lambda t: t.assignee != "")
    agent = auth(token(sub=handler))

    mine = await stub.ListTickets(intake_pb2.ListTicketsRequest(assignee=handler), metadata=agent)
    assert [t.ticket_number for t in mine.tickets] == [numbers[2], numbers[0]]  # newest first
    first = await stub.ListTickets(intake_pb2.ListTicketsRequest(assignee=handler, page_size=1), metadata=agent)
    rest = await stub.ListTickets(
        intake_pb2.ListTicketsRequest(assignee=handler, page_size=1, page_token=first.next_page_token), metadata=agent
    )
    assert [t.ticket_number for t in (*first.tickets, *rest.tickets)] == [numbers[2], numbers[0]]
    assert rest.next_page_token == ""
    theirs = await stub.ListTickets(intake_pb2.ListTicketsRequest(assignee=colleague), metadata=agent)
    assert [t.ticket_number for t in theirs.tickets] == [numbers[1]]


async def test_a_ticket_is_read_as_of_one_moment(intake: Intake, stub: Stub, wf: Workflow) -> None:
    """GetTicket reads the ticket, its attachments, timeline and comments in several statements: an
    assignment projected between two of them must not show on the timeline while the ticket still
    names nobody as its handler."""
    number = await submit(stub, uid("E"))
    async with intake.deps.uow(read_only=True) as reader:
        before = await reader.tickets.get(number)
        assert before is not None
        assert before.assignee == ""
        await wf.publish(number, events_pb2.TicketAssigned(team="app", assignee="agent-7"), actor=as_("lead-1"))
        await ticket_when(stub, number, lambda t: t.assignee == "agent-7")  # the projection has committed
        during = await reader.tickets.get(number)
    assert during == before
    after = await ticket_when(stub, number, lambda t: t.assignee == "agent-7")
    assert [e.event_type for e in after.timeline][-1] == "ticket.assigned"


async def test_later_events_never_move_a_ticket_in_progress_back(stub: Stub, wf: Workflow) -> None:
    """Tier 2 taking the ticket over changes its handler, not its progress; a reclassification, a
    late information reminder and an escalation add to the timeline only."""
    me = uid("E")
    mine = token(sub=me, roles=("requester",))
    number = await submit(stub, me)
    team, tier2 = uid("app"), uid("tier2")
    await assign_and_start(wf, stub, number, team)

    await wf.publish(
        number,
        events_pb2.TicketEscalated(from_tier="tier1", to_tier="tier2", reason="needs a database engineer"),
        actor=as_("agent-7"),
    )
    await wf.publish(
        number,
        events_pb2.TicketAssigned(team=tier2, assignee="engineer-2", co_handlers=["agent-7"]),
        actor=as_("engineer-2"),
    )
    got = await ticket_when(stub, number, lambda t: t.assignee == "engineer-2", mine)
    assert (got.status, got.assignee, got.team) == (S.TICKET_STATUS_IN_PROGRESS, "engineer-2", tier2)
    assert got.timeline[-1].summary == "assigned to engineer-2, co-handlers agent-7"
    assert list(got.co_handlers) == ["agent-7"]  # tier 1's handler stays on to help

    await wf.publish(number, classified(tier2, S.PRIORITY_P0))
    await wf.publish(number, events_pb2.TicketInfoRequested(missing_info=["log"], reminder=True))
    await wf.publish(number, events_pb2.SlaBreached(clock="resolve"))
    got = await ticket_when(stub, number, has_entry("ticket.info_requested", "sla.breached"), mine)
    assert (got.status, got.priority, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, S.PRIORITY_P0, "engineer-2")
    assert [e.event_type for e in got.timeline][-6:] == [
        "task.completed",
        "ticket.escalated",
        "ticket.assigned",
        "ticket.classified",
        "ticket.info_requested",
        "sla.breached",
    ]


async def test_information_request_holds_the_ticket_until_the_requester_supplies_it(stub: Stub, wf: Workflow) -> None:
    me = uid("E")
    mine = auth(token(sub=me, roles=("requester",)))
    req = submission(requester={"id": me, "name": "Han Meimei"}, attachments=[])
    number = (await stub.SubmitTicket(req, metadata=mine)).ticket.ticket_number
    team = uid("net")

    await wf.publish(number, classified(team))
    await wf.publish(number, events_pb2.TicketInfoRequested(missing_info=["attachment:screenshot|log"]))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER)
    assert got.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER
    assert got.timeline[-1].summary == "information requested: attachment:screenshot|log"

    # The reminder an hour later keeps it waiting.
    await wf.publish(number, events_pb2.TicketInfoRequested(missing_info=["attachment:screenshot|log"], reminder=True))
    got = await ticket_when(
        stub, number, lambda t: [e.event_type for e in t.timeline].count("ticket.info_requested") == 2
    )
    assert got.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER

    # Supplied: no longer waiting for the requester, back to where it stood (classified, 已受理).
    supplemented = await stub.SupplementTicket(
        intake_pb2.SupplementTicketRequest(
            ticket_number=number,
            request_id=str(uuid.uuid4()),
            attachments=[
                S.AttachmentUpload(
                    file_name="crash.log", content=b"Traceback...", kind="log", content_type="text/plain"
                )
            ],
        ),
        metadata=mine,
    )
    assert (supplemented.status, supplemented.info_incomplete) == (S.TICKET_STATUS_ACCEPTED, False)
    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=mine)
    assert got.status == S.TICKET_STATUS_ACCEPTED

    # Nobody handles it yet: the assignment clock's breach escalates it to the team lead, and
    # the ticket stays accepted; the team lead's assignment names the handler.
    await wf.publish(number, events_pb2.SlaWarning(clock="assign", remaining_seconds=600))
    escalated = await wf.publish(
        number,
        events_pb2.TicketEscalated(
            from_tier="tier1", to_tier="team_lead", automatic=True, reason="assign clock breached"
        ),
        actor=("system", "system"),
    )
    got = await ticket_when(stub, number, has_entry("ticket.escalated"))
    assert (got.status, got.assignee) == (S.TICKET_STATUS_ACCEPTED, "")
    last = got.timeline[-1]
    assert (last.event_type, last.summary) == ("ticket.escalated", "escalated tier1 → team_lead (automatic)")
    assert (last.actor.subject, last.actor.role, last.at) == ("system", "system", escalated.occurred_at)
    assert got.timeline[-2].summary == "warning: assign clock"

    await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="agent-3"), actor=as_("lead-1"))
    got = await ticket_when(stub, number, lambda t: t.assignee == "agent-3")
    assert (got.status, got.team, got.assignee) == (S.TICKET_STATUS_ACCEPTED, team, "agent-3")


async def test_an_assignment_ends_the_hold_when_tier_1_obtained_the_information(stub: Stub, wf: Workflow) -> None:
    """Tier 1 may get the missing information by phone instead: the assignment that follows means
    the ticket no longer waits for the requester (SOP §2: assignment waits for the information)."""
    number = await submit(stub, uid("E"))
    team = uid("net")

    await wf.publish(number, events_pb2.TicketInfoRequested(missing_info=["environment.software_version"]))
    await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER)
    # Tier 1's work on the information task is not handling the ticket: still waiting.
    await wf.publish(
        number,
        events_pb2.TaskCompleted(task_id="t-info", name="Obtain missing information", completed_by="agent-1"),
        actor=as_("agent-1"),
    )
    got = await ticket_when(stub, number, has_entry("task.completed"))
    assert got.status == S.TICKET_STATUS_WAITING_FOR_REQUESTER

    await wf.publish(number, events_pb2.TicketAssigned(team=team))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_ACCEPTED)
    assert (got.status, got.team, got.assignee) == (S.TICKET_STATUS_ACCEPTED, team, "")
    assert got.timeline[-1].summary == f"assigned to {team}"


async def test_the_sop_sends_a_ticket_back_only_after_the_requester_says_so(stub: Stub, wf: Workflow) -> None:
    """SOP §9: a failed user verification returns the ticket to implementation; a dissatisfied
    rating brings a revisit. A stray resolution after verification does not undo it."""
    me = uid("E")
    mine = auth(token(sub=me, roles=("requester",)))
    number = await submit(stub, me)
    await assign_and_start(wf, stub, number, uid("app"))

    async def verify(accepted: bool) -> intake_pb2.Ticket:
        return await stub.ConfirmResolution(
            intake_pb2.ConfirmResolutionRequest(
                ticket_number=number, request_id=str(uuid.uuid4()), accepted=accepted, comment="still crashes"
            ),
            metadata=mine,
        )

    await resolve(wf, stub, number)
    assert (await verify(False)).status == S.TICKET_STATUS_IN_PROGRESS
    await resolve(wf, stub, number)
    assert (await verify(True)).status == S.TICKET_STATUS_COMPLETED

    await wf.publish(number, events_pb2.TicketResolved(summary="a second notice"))
    await wf.publish(number, events_pb2.TicketSurveyRequested())
    got = await ticket_when(stub, number, has_entry("ticket.survey_requested"))
    assert got.status == S.TICKET_STATUS_COMPLETED
    assert [e.event_type for e in got.timeline][-3:] == [
        "ticket.verified",
        "ticket.resolved",
        "ticket.survey_requested",
    ]

    await stub.RateTicket(
        intake_pb2.RateTicketRequest(
            ticket_number=number, request_id=str(uuid.uuid4()), rating=S.RATING_DISSATISFIED, comment="too slow"
        ),
        metadata=mine,
    )
    await wf.publish(number, events_pb2.TicketRevisitRequired(task_id="t-revisit", rating_comment="too slow"))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_IN_PROGRESS)
    assert (got.status, got.rating, got.assignee) == (S.TICKET_STATUS_IN_PROGRESS, S.RATING_DISSATISFIED, "agent-7")

    await wf.publish(number, events_pb2.TicketClosed(outcome="completed", rating=S.RATING_DISSATISFIED))
    got = await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_CLOSED)
    assert got.status == S.TICKET_STATUS_CLOSED


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
    await wf.publish(number, events_pb2.TicketAssigned(team=team, assignee="engineer-2"), actor=("engineer-2", "agent"))
    await ticket_when(stub, number, lambda t: t.assignee == "engineer-2")

    # The same publish again (a producer retry) is dropped by the stream's duplicate window ...
    assert (await wf.send(assigned)).duplicate
    # ... but the same event under another message id (e.g. after the window) reaches intake again.
    assert not (await wf.send(assigned, msg_id=str(uuid.uuid4()))).duplicate
    sentinel = await wf.publish(number, events_pb2.SlaWarning(clock="resolve"))
    got = await ticket_when(stub, number, has_entry("sla.warning"))

    # Applied again, it would have handed the ticket back to agent-7 (and said so twice).
    assert (got.status, got.assignee) == (S.TICKET_STATUS_ACCEPTED, "engineer-2")
    assert [e.event_type for e in got.timeline] == [
        "ticket.submitted",
        "ticket.assigned",
        "ticket.assigned",
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
