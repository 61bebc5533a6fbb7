"""Work on tasks as people do it: a team lead dispatches (ClaimTask with `assignee` gives an open
or claimed task to a member of the team, who then works on it as if they had claimed it; nobody
else hands out tasks, and the four-eyes rule holds for whoever gets one), and a completion whose
answer was lost is sent again safely (CompleteTask's `request_id`)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.aio.client import Client
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.workflow.conftest import auth, token
from tests.workflow.intake_side import submit, ticket_number
from tests.workflow.test_deployments import AGENT, LEAD, bundle, deploy, first_task
from tests.workflow.test_incidents import refused, struct

Stub = workflow_pb2_grpc.WorkflowServiceStub
COLLEAGUE = auth(token("agent-2", groups=("tier1",)))
REVIEWER = auth(token("agent-3", groups=("reviewer",)))


async def test_a_lead_gives_a_task_to_an_agent_who_then_works_on_it(stub: Stub, nc: Client) -> None:
    await deploy(stub, bundle())
    number = ticket_number()
    await submit(nc, number)
    task = await first_task(stub, number)
    assert task.element_id == "Task_Handle"

    given = await stub.ClaimTask(pb.ClaimTaskRequest(task_id=task.task_id, assignee="agent-2"), metadata=LEAD)
    assert (given.state, given.assignee) == (pb.TASK_STATE_CLAIMED, "agent-2")
    mine = await stub.ListTasks(pb.ListTasksRequest(assignee="agent-2", ticket_number=number), metadata=COLLEAGUE)
    assert [t.task_id for t in mine.tasks] == [task.task_id]

    # Another member of the group may not take it over; an agent may not hand it on.
    taken = await refused(stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.task_id), metadata=AGENT))
    assert taken.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "claimed by agent-2" in (taken.details() or "")
    handing = await refused(
        stub.ClaimTask(pb.ClaimTaskRequest(task_id=task.task_id, assignee="agent-1"), metadata=COLLEAGUE)
    )
    assert handing.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only a team lead" in (handing.details() or "")

    done = await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(cause="disk full")), metadata=COLLEAGUE
    )
    assert (done.state, done.completed_by) == (pb.TASK_STATE_COMPLETED, "agent-2")
    instance = await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)
    claims = [(h.actor.subject, h.detail) for h in instance.history if h.action == "task.claimed"]
    assert claims == [("lead-1", f"{task.name} → agent-2")]

    # The review excludes whoever handled the ticket: the lead cannot give it to them either.
    review = await first_review(stub, number)
    excluded = await refused(
        stub.ClaimTask(pb.ClaimTaskRequest(task_id=review.task_id, assignee="agent-2"), metadata=LEAD)
    )
    assert excluded.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "four-eyes" in (excluded.details() or "")
    reviewer = await stub.ClaimTask(pb.ClaimTaskRequest(task_id=review.task_id, assignee="agent-3"), metadata=LEAD)
    assert reviewer.assignee == "agent-3"
    approved = await stub.CompleteTask(
        pb.CompleteTaskRequest(task_id=review.task_id, variables=struct(approved=True)), metadata=REVIEWER
    )
    assert approved.completed_by == "agent-3"


async def first_review(stub: Stub, number: str) -> pb.Task:
    found = await stub.ListTasks(pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN]), metadata=LEAD)
    [review] = [t for t in found.tasks if t.element_id == "Task_Review"]
    return review


async def test_a_completion_sent_again_gets_the_same_answer_and_happens_once(stub: Stub, nc: Client) -> None:
    """A portal whose CompleteTask answer was lost sends it again with the same request id."""
    await deploy(stub, bundle())
    number = ticket_number()
    await submit(nc, number)
    task = await first_task(stub, number)
    request = pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(cause="disk full"), request_id="r-1")

    first = await stub.CompleteTask(request, metadata=AGENT)
    again = await stub.CompleteTask(request, metadata=AGENT)
    assert again == first
    instance = await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)
    assert [h.element_id for h in instance.history if h.action == "task.completed"] == ["Task_Handle"]

    other_values = pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(cause="a virus"), request_id="r-1")
    mismatch = await refused(stub.CompleteTask(other_values, metadata=AGENT))
    assert mismatch.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(mismatch)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["request_id"]
    # Without the request id (or with another one) it is a second completion: refused.
    for second in (
        pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(cause="disk full")),
        pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(cause="disk full"), request_id="r-2"),
    ):
        twice = await refused(stub.CompleteTask(second, metadata=AGENT))
        assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "already completed" in (twice.details() or "")
    # Nor is it someone else's to repeat.
    replayed_by_other = await refused(stub.CompleteTask(request, metadata=COLLEAGUE))
    assert replayed_by_other.code() == grpc.StatusCode.FAILED_PRECONDITION
