"""The workflow service runs a small bundle end to end through its gRPC API: a ticket's instance
starts from `ticket.submitted` (once), tasks appear in the work list for their candidate groups,
four-eyes and form rules hold, SLA clocks run in business time, pause while the requester verifies,
breach on the service's clock and escalate, and every step leaves history and events."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from nats.aio.client import Client
from supportflow.events.v1 import events_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.workflow.bootstrap import Workflow
from tests.workflow.conftest import MovableClock, auth, token
from tests.workflow.intake_side import StreamTail, publish, submit, ticket_number, until

Stub = workflow_pb2_grpc.WorkflowServiceStub
AGENT = auth(token("agent-1", groups=("tier1",)))
OTHER_AGENT = auth(token("agent-2", groups=("tier1",)))
ENGINEER = auth(token("engineer-2", groups=("tier2",)))
LEAD = auth(token("lead-1", roles=("team_lead", "agent"), groups=("reviewer",)))


def variables(**values: object) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def open_tasks(stub: Stub, number: str, element_id: str) -> list[pb.Task]:
    async def fetch() -> list[pb.Task]:
        found = await stub.ListTasks(
            pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN, pb.TASK_STATE_CLAIMED]),
            metadata=LEAD,
        )
        return [t for t in found.tasks if t.element_id == element_id]

    return await until(fetch, bool)


async def instance(stub: Stub, number: str) -> pb.ProcessInstance:
    return await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)


def clock_of(inst: pb.ProcessInstance, name: str) -> pb.SlaClock:
    [found] = [c for c in inst.sla_clocks if c.name == name]
    return found


async def test_a_ticket_runs_from_submission_to_closing(stub: Stub, nc: Client, clock: MovableClock) -> None:
    tail = await StreamTail.open(nc)
    number = ticket_number()
    await submit(nc, number, urgency="high")

    [handle] = await open_tasks(stub, number, "Task_Handle")
    assert list(handle.candidate_groups) == ["tier1"]
    assert handle.priority == 2  # P1, decided by the DMN table for high urgency
    assert [f.id for f in handle.form] == ["cause", "summary"]
    started = await instance(stub, number)
    assert started.state == pb.INSTANCE_STATE_RUNNING
    assert started.deployment_version == 1, "the default bundle became version 1"
    assert started.variables["priority"] == "P1"
    resolve = clock_of(started, "resolve")
    assert resolve.state == pb.SLA_CLOCK_STATE_RUNNING
    assert resolve.due_at.ToDatetime() == (clock.now() + timedelta(hours=4)).replace(tzinfo=None)  # 24×7 calendar

    # An agent outside the candidate groups may not take it; a tier-1 agent may.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.ClaimTask(pb.ClaimTaskRequest(task_id=handle.task_id), metadata=ENGINEER)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    claimed = await stub.ClaimTask(pb.ClaimTaskRequest(task_id=handle.task_id), metadata=AGENT)
    assert claimed.state == pb.TASK_STATE_CLAIMED
    assert claimed.assignee == "agent-1"

    # The form is checked: the required cause is missing, an unknown field is named.
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.CompleteTask(
            pb.CompleteTaskRequest(task_id=handle.task_id, variables=variables(caus="x")), metadata=AGENT
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "variables.cause" in (invalid.value.details() or "")
    assert "variables.caus" in (invalid.value.details() or "")

    clock.advance(timedelta(hours=1))
    done = await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=handle.task_id, variables=variables(cause="bad export filter")), metadata=AGENT
    )
    assert done.state == pb.TASK_STATE_COMPLETED
    assert done.completed_by == "agent-1"
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.CompleteTask(
            pb.CompleteTaskRequest(task_id=handle.task_id, variables=variables(cause="again")), metadata=AGENT
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already completed" in (twice.value.details() or "")

    # Four eyes: whoever handled the ticket may not review the fix.
    [review] = await open_tasks(stub, number, "Task_Review")
    assert list(review.excluded_subjects) == ["agent-1"]
    with pytest.raises(grpc.aio.AioRpcError) as own_review:
        await stub.CompleteTask(
            pb.CompleteTaskRequest(task_id=review.task_id, variables=variables(approved=True)), metadata=AGENT
        )
    assert own_review.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "four-eyes" in (own_review.value.details() or "")
    await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=review.task_id, variables=variables(approved=True)), metadata=LEAD
    )

    # Waiting for the requester's verification pauses the resolve clock.
    waiting = await until(
        lambda: instance(stub, number), lambda i: any(s.element_id == "Catch_Verified" for s in i.active_steps)
    )
    assert clock_of(waiting, "resolve").state == pb.SLA_CLOCK_STATE_PAUSED
    clock.advance(timedelta(hours=10))  # longer than the whole target: paused time does not count
    await publish(nc, number, events_pb2.TicketVerified(accepted=False, comment="still crashes"))
    [again] = await open_tasks(stub, number, "Task_Handle")
    reopened = await instance(stub, number)
    resumed = clock_of(reopened, "resolve")
    assert resumed.state == pb.SLA_CLOCK_STATE_RUNNING
    assert resumed.due_at.ToDatetime() == (clock.now() + timedelta(hours=3)).replace(tzinfo=None), "3 h were left"

    await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=again.task_id, variables=variables(cause="filter, really")), metadata=OTHER_AGENT
    )
    [review2] = await open_tasks(stub, number, "Task_Review")
    assert sorted(review2.excluded_subjects) == ["agent-1", "agent-2"]
    await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=review2.task_id, variables=variables(approved=True)), metadata=LEAD
    )
    await until(lambda: instance(stub, number), lambda i: any(s.element_id == "Catch_Verified" for s in i.active_steps))
    await publish(nc, number, events_pb2.TicketVerified(accepted=True))

    closed = await until(lambda: instance(stub, number), lambda i: i.state == pb.INSTANCE_STATE_COMPLETED)
    assert closed.state == pb.INSTANCE_STATE_COMPLETED
    assert clock_of(closed, "resolve").state == pb.SLA_CLOCK_STATE_MET
    actions = [(h.action, h.actor.subject) for h in closed.history if h.action.startswith("task.completed")]
    assert actions == [
        ("task.completed", "agent-1"),
        ("task.completed", "lead-1"),
        ("task.completed", "agent-2"),
        ("task.completed", "lead-1"),
    ]
    await tail.wait_for(number, "ticket.closed")
    types = await tail.types_for(number)
    assert types[0] == "ticket.classified"
    assert types.count("task.created") == 4
    assert types.count("ticket.resolved") == 2
    assert types[-1] == "ticket.closed"


async def test_a_breached_clock_escalates_on_the_services_clock(stub: Stub, nc: Client, clock: MovableClock) -> None:
    tail = await StreamTail.open(nc)
    number = ticket_number()
    await submit(nc, number, urgency="low")  # P3: 8 hours
    [handle] = await open_tasks(stub, number, "Task_Handle")

    clock.advance(timedelta(hours=6, minutes=24))  # 80 %: a warning, no breach
    warned = await tail.wait_for(number, "sla.warning")
    assert warned[0].sla_warning.clock == "resolve"
    assert await tail.types_for(number) == ["ticket.classified", "task.created", "sla.warning"]

    clock.advance(timedelta(hours=1, minutes=36) - timedelta(microseconds=1))  # not yet due
    clock.advance(timedelta(microseconds=1))
    breached = await tail.wait_for(number, "sla.breached")
    assert breached[0].sla_breached.clock == "resolve"
    [tier2] = await open_tasks(stub, number, "Task_Tier2")
    assert list(tier2.candidate_groups) == ["tier2"]
    gone = await stub.ListTasks(
        pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_CANCELLED]), metadata=LEAD
    )
    assert [t.task_id for t in gone.tasks] == [handle.task_id], "the tier-1 task was withdrawn"
    assert "ticket.escalated" in await tail.types_for(number)
    assert clock_of(await instance(stub, number), "resolve").state == pb.SLA_CLOCK_STATE_BREACHED


async def test_a_redelivered_submission_starts_nothing_new(stub: Stub, nc: Client, workflow: Workflow) -> None:
    number = ticket_number()
    first = await submit(nc, number)
    await open_tasks(stub, number, "Task_Handle")
    # The same event again under a new message id (JetStream cannot drop it as a duplicate).
    js = nc.jetstream()
    await js.publish(f"supportflow.acme.{first.type}", first.SerializeToString(), headers={"Nats-Msg-Id": "again"})
    await submit(nc, number)  # and a second submission event for the same ticket number
    await until(lambda: _handled(workflow), lambda n: n >= 3)
    tasks = await stub.ListTasks(pb.ListTasksRequest(ticket_number=number), metadata=LEAD)
    assert len(tasks.tasks) == 1
    started = [h for h in (await instance(stub, number)).history if h.action == "started"]
    assert len(started) == 1


async def _handled(workflow: Workflow) -> int:
    return workflow.consumer.handled


async def test_the_rules_that_decided_are_on_the_instance_and_the_event(stub: Stub, nc: Client) -> None:
    tail = await StreamTail.open(nc)
    number = ticket_number()
    await submit(nc, number, urgency="high")
    await open_tasks(stub, number, "Task_Handle")
    routing = (await instance(stub, number)).routing
    assert [(r.decision_id, r.rule_id) for r in routing.matched_rules] == [("priority", "Rule_high")]
    assert routing.matched_rules[0].description == "High urgency is P1, resolved within 4 hours"
    assert routing.matched_rules[0].outputs["priority"] == "P1"
    [classified] = await tail.wait_for(number, "ticket.classified")
    assert [r.rule_id for r in classified.ticket_classified.matched_rules] == ["Rule_high"]
    assert classified.ticket_classified.priority == 2
