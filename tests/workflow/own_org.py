"""An organisation of the tests' own, for tests that list what the workflow service holds:
tickets other tests leave on the shared event stream (started by whichever workflow service
consumes next, in its test's database) are acme's, so they never show in this organisation's
lists. With its members' tokens, a deployment, and a ticket stopped at an incident."""

from __future__ import annotations

import uuid

from nats.aio.client import Client
from supportflow.events.v1 import events_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.workflow.conftest import auth, token
from tests.workflow.intake_side import publish, submit, until
from tests.workflow.test_incidents import struct

Stub = workflow_pb2_grpc.WorkflowServiceStub
ORG = f"own-{uuid.uuid4().hex[:8]}"


def member(sub: str, roles: tuple[str, ...], groups: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    return auth(token(sub, org=ORG, roles=roles, groups=groups))


ADMIN_TOKEN = token("admin-1", org=ORG, roles=("process_admin", "agent"))
ADMIN = auth(ADMIN_TOKEN)
AGENT = member("agent-1", ("agent",), ("tier1",))
LEAD = member("lead-1", ("team_lead", "agent"), ("reviewer", "tier1"))


async def deploy(stub: Stub, files: list[pb.BundleFile]) -> int:
    deployed = await stub.DeployProcess(pb.DeployProcessRequest(organization=ORG, files=files), metadata=ADMIN)
    return deployed.deployment.version


async def open_tasks(stub: Stub, number: str) -> list[pb.Task]:
    async def fetch() -> list[pb.Task]:
        request = pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN])
        return list((await stub.ListTasks(request, metadata=LEAD)).tasks)

    return await until(fetch, bool)


async def started(stub: Stub, nc: Client, number: str) -> None:
    await submit(nc, number, org=ORG)
    assert await open_tasks(stub, number), f"no task appeared for {number}"


async def stopped_at_reopening(stub: Stub, nc: Client, number: str) -> None:
    """Handled, reviewed and rejected by its requester: the rework's script lacks an estimate."""
    await started(stub, nc, number)
    for element, values, who in (("Task_Handle", {"cause": "disk"}, AGENT), ("Task_Review", {"approved": True}, LEAD)):
        [task] = [t for t in await open_tasks(stub, number) if t.element_id == element]
        await stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.task_id, variables=struct(**values)), metadata=who)
    await publish(nc, number, events_pb2.TicketVerified(accepted=False), org=ORG)

    async def state() -> pb.ProcessInstance:
        return await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)

    assert (await until(state, lambda i: i.state == pb.INSTANCE_STATE_INCIDENT)).state == pb.INSTANCE_STATE_INCIDENT


async def instance(stub: Stub, number: str) -> pb.ProcessInstance:
    return await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)
