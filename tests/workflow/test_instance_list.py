"""Operators find instances without knowing their tickets: ListProcessInstances lists an
organisation's instances by state, process and deployment version, most recently started first,
page by page — above all those stopped at an incident, as Camunda Operate lists them. In an
organisation of the tests' own (own_org.py), so that every list is exactly this test's."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.aio.client import Client
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.workflow.conftest import MovableClock, auth, token
from tests.workflow.intake_side import ticket_number
from tests.workflow.own_org import LEAD, deploy, started, stopped_at_reopening
from tests.workflow.test_deployments import bundle
from tests.workflow.test_incidents import NEEDS_ESTIMATE

Stub = workflow_pb2_grpc.WorkflowServiceStub


async def test_an_operator_finds_the_instances_stopped_at_an_incident(
    stub: Stub, nc: Client, clock: MovableClock
) -> None:
    assert await deploy(stub, bundle(**{"mini.bpmn": NEEDS_ESTIMATE})) == 1
    stuck, running, newest = ticket_number(), ticket_number(), ticket_number()
    await stopped_at_reopening(stub, nc, stuck)
    clock.advance(timedelta(minutes=5))
    await started(stub, nc, running)
    assert await deploy(stub, bundle()) == 2
    clock.advance(timedelta(minutes=5))
    await started(stub, nc, newest)

    async def listed(**filters: object) -> list[pb.ProcessInstance]:
        """Every page, one instance a page."""
        found: list[pb.ProcessInstance] = []
        request = pb.ListProcessInstancesRequest(page_size=1, **filters)  # type: ignore[arg-type]
        for _ in range(10):
            page = await stub.ListProcessInstances(request, metadata=LEAD)
            assert len(page.instances) <= 1
            found.extend(page.instances)
            if not page.next_page_token:
                return found
            request.page_token = page.next_page_token
        pytest.fail("more pages than instances")

    def numbers(instances: list[pb.ProcessInstance]) -> list[str]:
        return [i.ticket_number for i in instances]

    assert numbers(await listed()) == [newest, running, stuck]  # most recently started first
    [shown] = await listed(states=[pb.INSTANCE_STATE_INCIDENT])
    assert (shown.ticket_number, shown.state, shown.deployment_version) == (stuck, pb.INSTANCE_STATE_INCIDENT, 1)
    assert [(x.element_id, x.blocking, x.resolved) for x in shown.incidents] == [("Script_Reopen", True, False)]
    # GetProcessInstance has them:
    assert (list(shown.history), list(shown.sla_clocks), dict(shown.variables)) == ([], [], {})
    assert numbers(await listed(states=[pb.INSTANCE_STATE_RUNNING])) == [newest, running]
    assert numbers(await listed(states=[pb.INSTANCE_STATE_RUNNING, pb.INSTANCE_STATE_INCIDENT])) == [
        newest,
        running,
        stuck,
    ]
    assert numbers(await listed(deployment_version=1)) == [running, stuck]
    assert numbers(await listed(deployment_version=2)) == [newest]
    assert numbers(await listed(process_id=shown.process_id)) == [newest, running, stuck]
    assert numbers(await listed(process_id="no_such_process")) == []


async def test_requesters_other_organisations_and_bad_requests_are_refused(stub: Stub) -> None:
    async def refused(
        request: pb.ListProcessInstancesRequest, who: tuple[tuple[str, str], ...]
    ) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ListProcessInstances(request, metadata=who)
        return error.value

    everything = pb.ListProcessInstancesRequest()
    requester = auth(token("E1001", roles=("requester",)))
    assert (await refused(everything, requester)).code() == grpc.StatusCode.PERMISSION_DENIED
    elsewhere = pb.ListProcessInstancesRequest(organization="acme")
    assert (await refused(elsewhere, LEAD)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await refused(everything, ())).code() == grpc.StatusCode.UNAUTHENTICATED

    for request, field in (
        (pb.ListProcessInstancesRequest(page_token="not-a-token"), "page_token"),
        (pb.ListProcessInstancesRequest(page_token="WyJ5ZXN0ZXJkYXkiLCAxXQ=="), "page_token"),  # ["yesterday", 1]
        (pb.ListProcessInstancesRequest(deployment_version=-1), "deployment_version"),
        (pb.ListProcessInstancesRequest(page_size=501), "page_size"),
    ):
        error = await refused(request, LEAD)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(error)
        assert status is not None
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert [v.field for v in bad.field_violations] == [field]
