"""Process admins change the process by deploying files: a changed copy of the bundle (an extra
approval step, a changed routing rule) governs new tickets at once, while a ticket started before
keeps its version to the end. Broken and malicious bundles are refused with file, element and
problem, and a diagram that loops forever fails its step, not the service."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.aio.client import Client
from supportflow.events.v1 import events_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from tests.workflow.conftest import BUNDLES, auth, token
from tests.workflow.intake_side import publish, submit, ticket_number, until

Stub = workflow_pb2_grpc.WorkflowServiceStub
ADMIN = auth(token("admin-1", roles=("process_admin", "agent")))
AGENT = auth(token("agent-1", groups=("tier1",)))
LEAD = auth(token("lead-1", roles=("team_lead", "agent"), groups=("reviewer", "tier1")))


def bundle(**replace: tuple[str, str]) -> list[pb.BundleFile]:
    """The mini bundle's files, with `{file: (old, new)}` text replacements."""
    files = []
    root = BUNDLES / "mini"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        if rel in replace:
            old, new = replace[rel]
            assert old in text, f"{old!r} not in {rel}"
            text = text.replace(old, new)
        files.append(pb.BundleFile(path=rel, content=text.encode()))
    return files


def with_file(files: list[pb.BundleFile], path: str, content: bytes) -> list[pb.BundleFile]:
    return [f for f in files if f.path != path] + [pb.BundleFile(path=path, content=content)]


async def deploy(stub: Stub, files: list[pb.BundleFile], *, dry_run: bool = False) -> pb.DeployProcessResponse:
    return await stub.DeployProcess(
        pb.DeployProcessRequest(organization="acme", files=files, dry_run=dry_run, description="test"), metadata=ADMIN
    )


async def rejected(stub: Stub, files: list[pb.BundleFile]) -> list[tuple[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await deploy(stub, files)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    status = rpc_status.from_call(error.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return [(v.field, v.description) for v in bad.field_violations]


async def first_task(stub: Stub, number: str) -> pb.Task:
    async def fetch() -> list[pb.Task]:
        return list((await stub.ListTasks(pb.ListTasksRequest(ticket_number=number), metadata=LEAD)).tasks)

    tasks = await until(fetch, bool)
    assert tasks, f"no task appeared for {number}"
    return tasks[0]


async def version_of(stub: Stub, number: str) -> int:
    got = await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)
    return got.deployment_version


EXTRA_APPROVAL = (
    '<bpmn:sequenceFlow id="Flow_3" sourceRef="Throw_Classified" targetRef="Task_Handle"/>',
    '<bpmn:sequenceFlow id="Flow_3" sourceRef="Throw_Classified" targetRef="Task_LeadApproval"/>'
    '<bpmn:userTask id="Task_LeadApproval" name="Team lead approves the handling" camunda:candidateGroups="team_lead">'
    "<bpmn:incoming>Flow_3</bpmn:incoming><bpmn:outgoing>Flow_3b</bpmn:outgoing></bpmn:userTask>"
    '<bpmn:sequenceFlow id="Flow_3b" sourceRef="Task_LeadApproval" targetRef="Task_Handle"/>',
)
HANDLE_INCOMING = ("<bpmn:incoming>Flow_3</bpmn:incoming><bpmn:incoming>Flow_Rework</bpmn:incoming>",
                   "<bpmn:incoming>Flow_3b</bpmn:incoming><bpmn:incoming>Flow_Rework</bpmn:incoming>")  # fmt: skip
ROUTING_CHANGE = ('<inputEntry id="Entry_high"><text>"high"</text></inputEntry>',
                  '<inputEntry id="Entry_high"><text>? in ("high", "medium")</text></inputEntry>')  # fmt: skip


async def test_a_changed_copy_governs_new_tickets_while_old_ones_keep_their_version(stub: Stub, nc: Client) -> None:
    old_ticket = ticket_number()
    await submit(nc, old_ticket, urgency="medium")
    old_task = await first_task(stub, old_ticket)
    assert old_task.element_id == "Task_Handle"
    assert old_task.priority == 4  # P3: medium was not high under version 1
    assert await version_of(stub, old_ticket) == 1

    text = (BUNDLES / "mini" / "mini.bpmn").read_text().replace(*EXTRA_APPROVAL).replace(*HANDLE_INCOMING)
    changed = with_file(bundle(**{"priority.dmn": ROUTING_CHANGE}), "mini.bpmn", text.encode())
    checked = await deploy(stub, changed, dry_run=True)
    assert not checked.HasField("deployment")
    assert checked.next_version == 2
    deployed = await deploy(stub, changed)
    assert deployed.deployment.version == 2

    new_ticket = ticket_number()
    await submit(nc, new_ticket, urgency="medium")
    new_task = await first_task(stub, new_ticket)
    assert new_task.element_id == "Task_LeadApproval", "new tickets take the extra approval step"
    assert new_task.priority == 2, "the changed routing rule makes medium urgency P1"
    assert await version_of(stub, new_ticket) == 2

    # The old ticket runs on under version 1: no approval step appears after its handling.
    cause = Struct()
    cause.update({"cause": "config"})
    await stub.CompleteTask(pb.CompleteTaskRequest(task_id=old_task.task_id, variables=cause), metadata=AGENT)

    async def open_steps() -> list[str]:
        found = await stub.ListTasks(
            pb.ListTasksRequest(ticket_number=old_ticket, states=[pb.TASK_STATE_OPEN]), metadata=LEAD
        )
        return [t.element_id for t in found.tasks]

    assert await until(open_steps, bool) == ["Task_Review"]
    assert await version_of(stub, old_ticket) == 1

    listed = await stub.ListDeployments(pb.ListDeploymentsRequest(organization="acme"), metadata=ADMIN)
    assert [d.version for d in listed.deployments] == [2, 1]


@pytest.mark.parametrize(
    ("case", "change", "expect_file", "expect"),
    [
        ("import in a script", ("reopened = True", "import os\nreopened = True"), "mini.bpmn", "Script_Reopen"),
        ("dunder walk in a condition", ("verification_accepted == True",
                                        "().__class__.__base__.__subclasses__()"), "mini.bpmn", "Flow_Yes"),
        ("missing DMN", ('camunda:decisionRef="priority"', 'camunda:decisionRef="priorities"'), "mini.bpmn",
         "Task_Prioritise"),
        ("malformed XML", ("</bpmn:process>", "</bpmn:proces>"), "mini.bpmn", "line"),
    ],
)  # fmt: skip
async def test_broken_bundles_are_refused_precisely_and_the_service_goes_on(
    stub: Stub, nc: Client, case: str, change: tuple[str, str], expect_file: str, expect: str
) -> None:
    problems = await rejected(stub, bundle(**{expect_file: change}))
    assert any(field == f"files[{expect_file}]" and expect in text for field, text in problems), problems
    # Nothing was deployed, and tickets still run.
    number = ticket_number()
    await submit(nc, number)
    assert (await first_task(stub, number)).element_id == "Task_Handle"
    assert await version_of(stub, number) == 1


async def test_feel_in_a_dmn_cell_is_refused_with_the_fix(stub: Stub) -> None:
    problems = await rejected(stub, bundle(**{"priority.dmn": ('<text>"high"</text>', "<text>[1..5]</text>")}))
    assert problems == [
        (
            "files[priority.dmn]",
            "Rule_high: rule 1, input \"Urgency\": '[1..5]' is FEEL, which is not supported "
            "(cells are Python): write 1 <= ? <= 5",
        )
    ]


async def test_only_process_admins_deploy(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.DeployProcess(pb.DeployProcessRequest(organization="acme", files=bundle()), metadata=AGENT)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_diagram_that_loops_forever_fails_its_step_not_the_service(stub: Stub, nc: Client) -> None:
    looping = bundle(**{"mini.bpmn": ("reopened = True", "while True:\n    pass")})
    await deploy(stub, looping)
    number = ticket_number()
    await submit(nc, number)
    await first_task(stub, number)
    for element, values in (("Task_Handle", {"cause": "x"}), ("Task_Review", {"approved": True})):
        found = await stub.ListTasks(pb.ListTasksRequest(ticket_number=number, states=[pb.TASK_STATE_OPEN]),
                                     metadata=LEAD)  # fmt: skip
        [task] = [t for t in found.tasks if t.element_id == element]
        s = Struct()
        s.update(values)
        who = AGENT if element == "Task_Handle" else LEAD
        await stub.CompleteTask(pb.CompleteTaskRequest(task_id=task.task_id, variables=s), metadata=who)
    await publish(nc, number, events_pb2.TicketVerified(accepted=False))

    async def state() -> pb.ProcessInstance:
        return await stub.GetProcessInstance(pb.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD)

    stuck = await until(state, lambda i: i.state == pb.INSTANCE_STATE_INCIDENT)
    assert stuck.state == pb.INSTANCE_STATE_INCIDENT
    [incident] = stuck.incidents
    assert incident.element_id == "Script_Reopen"
    assert "step limit" in incident.message or "SandboxTimeout" in incident.message
    # The service still serves other tickets.
    other = ticket_number()
    await submit(nc, other)
    assert (await first_task(stub, other)).element_id == "Task_Handle"
