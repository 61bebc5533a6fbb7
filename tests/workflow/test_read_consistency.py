"""GetProcessInstance reads the instance, its history and its SLA clocks in several statements: a
step committed between two of them must not show in the history while the instance does not show
it yet (PostgreSQL reads them as of one moment)."""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct
from nats.aio.client import Client
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.workflow.bootstrap import Workflow
from tests.workflow.intake_side import submit, ticket_number
from tests.workflow.test_deployments import AGENT, bundle, deploy, first_task


async def test_an_instance_is_read_as_of_one_moment(
    workflow: Workflow, stub: workflow_pb2_grpc.WorkflowServiceStub, nc: Client
) -> None:
    await deploy(stub, bundle())
    number = ticket_number()
    await submit(nc, number)
    task = await first_task(stub, number)
    async with workflow.deps.uow(read_only=True) as reader:
        before = (await reader.instances.get(number), await reader.history.of(number), await reader.clocks.of(number))
        done = Struct()
        done.update({"cause": "disk"})
        await stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.task_id, variables=done), metadata=AGENT)
        during = (await reader.instances.get(number), await reader.history.of(number), await reader.clocks.of(number))
    assert during == before
    async with workflow.deps.uow(read_only=True) as reader:
        after = await reader.history.of(number)
    first_new = after[len(before[1])]
    assert (first_new.action, first_new.element_id) == ("task.completed", task.element_id)
