"""An incident — diagram code that failed, the ticket's process stopped at that step — is resolved
over the API, as in Camunda Operate: a team lead or process admin supplies what was missing and the
failed step runs again, from the data it started with plus the fix; if it fails again that is a
new incident. Agents may not; an unknown or resolved incident is refused clearly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.aio.client import Client
from supportflow.events.v1 import events_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.workflow.intake_side import publish, submit, ticket_number, until
from tests.workflow.test_deployments import ADMIN, AGENT, LEAD, bundle, deploy, first_task

Stub = workflow_pb2_grpc.WorkflowServiceStub
#: The reopening script needs an estimate no ticket carries: every rework stops there.
NEEDS_ESTIMATE = ("reopened = True", "reopened = True\nrework_hours = int(rework_estimate)")


def struct(**values: object) -> Struct:
    s = Struct()
    s.update(values)
    return s


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def stopped_at_reopening(stub: Stub, nc: Client) -> tuple[str, Callable[[], Awaitable[pb.ProcessInstance]]]:
    """A ticket handled, reviewed and rejected by its requester: its rework stops at the script."""
    await deploy(stub, bundle(**{"mini.bpmn": NEEDS_ESTIMATE}))
    number = ticket_number()
    await submit(nc, number)
    await first_task(stub, number)
    for element, values, who in (("Task_Handle", {"cause": "disk"}, AGENT), ("Task_Review", {"approved": True}, LEAD)):
        found = await stub.ListTasks(pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN]),
                                     metadata=LEAD)  # fmt: skip
        [task] = [t for t in found.tasks if t.element_id == element]
        await stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(**values)), metadata=who)
    await publish(nc, number, events_pb2.TicketVerified(accepted=False))

    async def state() -> pb.ProcessInstance:
        return await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)

    await until(state, lambda i: i.state == pb.INSTANCE_STATE_INCIDENT)
    return number, state


async def test_a_lead_supplies_the_missing_value_and_the_failed_step_runs_on(stub: Stub, nc: Client) -> None:
    number, state = await stopped_at_reopening(stub, nc)
    [incident] = (await state()).incidents
    assert (incident.element_id, incident.blocking, incident.resolved) == ("Script_Reopen", True, False)
    assert "rework_estimate" in incident.message

    # Retried as it is, the step fails again: the old incident is resolved, a new one stands.
    again = await stub.ResolveIncident(
        pb.ResolveIncidentRequest(ticket_number=number, incident_id=incident.incident_id), metadata=LEAD
    )
    assert again.state == pb.INSTANCE_STATE_INCIDENT
    first, second = again.incidents
    assert (first.incident_id, first.resolved) == (incident.incident_id, True)
    assert (second.element_id, second.blocking, second.resolved) == ("Script_Reopen", True, False)

    # With the estimate the step runs, and the ticket goes back to its handler's queue.
    fixed = await stub.ResolveIncident(
        pb.ResolveIncidentRequest(
            ticket_number=number,
            incident_id=second.incident_id,
            variables=struct(rework_estimate="4"),
            comment="estimate from the requester's call",
        ),
        metadata=ADMIN,
    )
    assert fixed.state == pb.INSTANCE_STATE_RUNNING
    assert all(x.resolved for x in fixed.incidents)
    assert fixed.variables["rework_hours"] == 4
    assert fixed.variables["reopened"] is True
    found = await stub.ListTasks(pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN]), metadata=LEAD)
    assert [t.element_id for t in found.tasks] == ["Task_Handle"]
    resolved = [h for h in fixed.history if h.action == "incident.resolved"]
    assert [(h.actor.subject, h.element_id, h.detail) for h in resolved] == [
        ("lead-1", "Script_Reopen", ""),
        ("admin-1", "Script_Reopen", "estimate from the requester's call; set rework_estimate"),
    ]

    # Once is enough.
    twice = await refused(
        stub.ResolveIncident(
            pb.ResolveIncidentRequest(ticket_number=number, incident_id=second.incident_id), metadata=LEAD
        )
    )
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "resolved already" in (twice.details() or "")


async def test_only_leads_and_process_admins_resolve_and_mistakes_are_named(stub: Stub, nc: Client) -> None:
    number, state = await stopped_at_reopening(stub, nc)
    [incident] = (await state()).incidents
    request = pb.ResolveIncidentRequest(ticket_number=number, incident_id=incident.incident_id)

    anonymous = await refused(stub.ResolveIncident(request))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    denied = await refused(stub.ResolveIncident(request, metadata=AGENT))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    missing = await refused(stub.ResolveIncident(pb.ResolveIncidentRequest(ticket_number=number), metadata=LEAD))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(missing)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("incident_id", "is required")]

    unknown = pb.ResolveIncidentRequest(ticket_number=number, incident_id="no-such-incident")
    assert (await refused(stub.ResolveIncident(unknown, metadata=LEAD))).code() == grpc.StatusCode.NOT_FOUND
    elsewhere = pb.ResolveIncidentRequest(ticket_number=ticket_number(), incident_id=incident.incident_id)
    assert (await refused(stub.ResolveIncident(elsewhere, metadata=LEAD))).code() == grpc.StatusCode.NOT_FOUND

    # None of that touched the instance.
    after = await state()
    assert after.state == pb.INSTANCE_STATE_INCIDENT
    assert [(x.incident_id, x.resolved) for x in after.incidents] == [(incident.incident_id, False)]
