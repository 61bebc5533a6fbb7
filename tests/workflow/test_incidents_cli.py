"""A process admin finds the tickets stopped at an incident and resolves them from the command
line: `supportflow incidents` lists them with what failed, `supportflow incidents resolve TICKET
INCIDENT --set name=value` runs the failed step again with the value it lacked."""

from __future__ import annotations

import argparse
import asyncio

import pytest
from nats.aio.client import Client
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.incidents_cli import parse_assignment, run
from services.workflow.bootstrap import Workflow
from tests.workflow.conftest import token
from tests.workflow.intake_side import ticket_number
from tests.workflow.own_org import ADMIN_TOKEN, ORG, deploy, instance, stopped_at_reopening
from tests.workflow.test_deployments import bundle
from tests.workflow.test_incidents import NEEDS_ESTIMATE


def args(workflow: Workflow, action: str = "list", *, tok: str = ADMIN_TOKEN, **more: object) -> argparse.Namespace:
    """In an organisation of the tests' own (own_org.py): its lists are exactly this test's."""
    values: dict[str, object] = {"ticket": "", "incident": "", "set": [], "comment": "", **more}
    return argparse.Namespace(action=action, org=ORG, address=f"127.0.0.1:{workflow.host.port}", token=tok, **values)


async def test_list_then_resolve_with_the_missing_value(
    workflow: Workflow, stub: workflow_pb2_grpc.WorkflowServiceStub, nc: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    await deploy(stub, bundle(**{"mini.bpmn": NEEDS_ESTIMATE}))
    number = ticket_number()
    await stopped_at_reopening(stub, nc, number)
    [incident] = (await instance(stub, number)).incidents

    assert await asyncio.to_thread(run, args(workflow)) == 0
    out = capsys.readouterr().out
    assert f"1 ticket(s) of {ORG} stopped at an incident" in out
    assert number in out
    assert f"incident {incident.incident_id} at Script_Reopen" in out
    assert "rework_estimate" in out  # what failed, in the engine's words

    # Retried as it is, the step fails again: said so, with the new incident.
    again = args(workflow, "resolve", ticket=number, incident=incident.incident_id)
    assert await asyncio.to_thread(run, again) == 1
    err = capsys.readouterr().err
    assert "the step failed again" in err
    [second] = [x for x in (await instance(stub, number)).incidents if not x.resolved]
    assert f"incident {second.incident_id} at Script_Reopen" in err

    fixed = args(
        workflow,
        "resolve",
        ticket=number,
        incident=second.incident_id,
        set=["rework_estimate=4"],
        comment="estimate from the requester's call",
    )
    assert await asyncio.to_thread(run, fixed) == 0
    assert f"incident {second.incident_id} resolved; the process is running" in capsys.readouterr().out
    after = await instance(stub, number)
    assert after.variables["rework_hours"] == 4
    assert any(h.detail == "estimate from the requester's call; set rework_estimate" for h in after.history)

    assert await asyncio.to_thread(run, args(workflow)) == 0
    assert f"no ticket of {ORG} is stopped at an incident" in capsys.readouterr().out


async def test_an_agent_is_told_it_may_not(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    agent = token("agent-1", roles=("agent",))
    resolve = args(workflow, "resolve", tok=agent, ticket="TS20260302000001", incident="x")
    assert await asyncio.to_thread(run, resolve) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err


def test_values_are_json_where_they_are_json_else_text() -> None:
    assert parse_assignment("rework_estimate=4") == ("rework_estimate", 4)
    assert parse_assignment("approved=true") == ("approved", True)
    assert parse_assignment("cause=disk full") == ("cause", "disk full")
    assert parse_assignment('note="4"') == ("note", "4")
    assert parse_assignment("empty=") == ("empty", "")
    with pytest.raises(SystemExit, match="name=value"):
        parse_assignment("rework_estimate")
