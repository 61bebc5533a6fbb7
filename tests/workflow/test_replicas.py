"""Two workflow replicas side by side on one database and one durable consumer: every ticket gets
exactly one instance, every SLA breach fires once, and a task is completed through either replica
as if there were one service."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import grpc
import nats
import pytest
from google.protobuf.struct_pb2 import Struct
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.workflow.conftest import SECRET, auth, token
from tests.workflow.intake_side import StreamTail, submit, ticket_number, until
from tests.workflow.test_faults import count, fast_breach_bundle

pytestmark = pytest.mark.e2e

TICKETS = 80


async def test_two_replicas_start_each_instance_once_and_breach_each_clock_once(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory, tmp_path: Path
) -> None:
    env = {
        "SUPPORTFLOW_ENVIRONMENT": "test",
        "SUPPORTFLOW_DATABASE_URL": fresh_database_url,
        # A stream of its own: the session's holds other tests' submissions, which a first
        # workflow consumer on this fresh database would (rightly) start instances for.
        "SUPPORTFLOW_NATS_URL": own_nats_server.url,
        "SUPPORTFLOW_JWT_SECRET": SECRET,
        "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
        "SUPPORTFLOW_GRPC_PORT": "{grpc_port}",
        "SUPPORTFLOW_DEFAULT_BUNDLE_DIR": str(fast_breach_bundle(tmp_path)),
        "SUPPORTFLOW_SCHEDULER_POLL_SECONDS": "0.1",
    }
    nc = await nats.connect(own_nats_server.url)
    try:
        tail = await StreamTail.open(nc)
        replicas = [service_process_factory(f"workflow-{n}", "services.workflow", env) for n in ("a", "b")]
        numbers = [ticket_number() for _ in range(TICKETS)]
        for number in numbers:
            await submit(nc, number)

        assert (
            await until(lambda: count(fresh_database_url, "workflow_instances"), lambda n: n == TICKETS, 60) == TICKETS
        )

        async def breached() -> Counter[str]:
            return Counter(e.ticket_number for e in await tail.read() if e.type == "sla.breached")

        seen = await until(breached, lambda c: len(c) == TICKETS, 60)
        assert set(seen) == set(numbers)
        assert max(seen.values()) == 1, "a clock breached twice"
        events = await tail.read()
        handled = Counter(
            e.ticket_number for e in events if e.type == "task.created" and e.task_created.element_id == "Task_Handle"
        )
        assert handled == Counter(numbers), "each instance started exactly once"

        # A task listed through one replica is completed through the other.
        lead = auth(token("lead-1", roles=("team_lead", "agent"), groups=("tier2",)))
        async with (
            grpc.aio.insecure_channel(replicas[0].address) as a,
            grpc.aio.insecure_channel(replicas[1].address) as b,
        ):
            first, second = workflow_pb2_grpc.WorkflowServiceStub(a), workflow_pb2_grpc.WorkflowServiceStub(b)
            listed = await first.ListTasks(
                pb.ListTasksRequest(ticket_number=numbers[0], states=[pb.TASK_STATE_OPEN]), metadata=lead
            )
            [tier2] = [t for t in listed.tasks if t.element_id == "Task_Tier2"]
            cause = Struct()
            cause.update({"cause": "replica test"})
            done = await second.CompleteTask(
                pb.CompleteTaskRequest(task_id=tier2.task_id, variables=cause), metadata=lead
            )
            assert done.state == pb.TASK_STATE_COMPLETED
            with pytest.raises(grpc.aio.AioRpcError) as twice:
                await first.CompleteTask(pb.CompleteTaskRequest(task_id=tier2.task_id, variables=cause), metadata=lead)
            assert "already completed" in (twice.value.details() or "")
    finally:
        await nc.close()
