"""`supportflow incidents` lists the tickets whose process stopped at an incident (diagram code that
failed), with what failed; `supportflow incidents resolve TICKET INCIDENT --set name=value` runs
the failed step again with the missing values, as `zbctl resolve incident` does for Zeebe. A gRPC
client of the running workflow service (ListProcessInstances, ResolveIncident): it needs only the
contracts in proto/, like any upstream system."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct
from supportflow.workflow.v1 import workflow_pb2, workflow_pb2_grpc

from services.cli_client import Metadata, bearer, report_error


def run(ns: argparse.Namespace) -> int:
    metadata = bearer(ns.token, org=ns.org, subject="process-admin", roles=["process_admin"])
    with grpc.insecure_channel(ns.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        try:
            if ns.action == "resolve":
                return _resolve(stub, metadata, ns)
            return _list(stub, metadata, ns.org)
        except grpc.RpcError as error:
            return report_error(error, "the request", "workflow")


def _list(stub: workflow_pb2_grpc.WorkflowServiceStub, metadata: Metadata, org: str) -> int:
    request = workflow_pb2.ListProcessInstancesRequest(
        organization=org, states=[workflow_pb2.INSTANCE_STATE_INCIDENT], page_size=500
    )
    stopped: list[workflow_pb2.ProcessInstance] = []
    while True:
        page = stub.ListProcessInstances(request, metadata=metadata, timeout=30)
        stopped.extend(page.instances)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    if not stopped:
        print(f"✔ no ticket of {org} is stopped at an incident")
        return 0
    print(f"{len(stopped)} ticket(s) of {org} stopped at an incident, most recently started first:")
    for instance in stopped:
        print(f"\n{instance.ticket_number}  {instance.process_id} version {instance.deployment_version}")
        for incident in instance.incidents:
            if incident.blocking and not incident.resolved:
                at = incident.at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")
                print(f"  incident {incident.incident_id} at {incident.element_id} ({at})")
                print(f"    {incident.message}")
    print("\nresolve one with: supportflow incidents resolve TICKET INCIDENT [--set name=value …] [--comment …]")
    return 0


def _resolve(stub: workflow_pb2_grpc.WorkflowServiceStub, metadata: Metadata, ns: argparse.Namespace) -> int:
    variables = Struct()
    variables.update(dict(parse_assignment(item) for item in ns.set))
    instance = stub.ResolveIncident(
        workflow_pb2.ResolveIncidentRequest(
            ticket_number=ns.ticket, incident_id=ns.incident, variables=variables, comment=ns.comment
        ),
        metadata=metadata,
        timeout=60,
    )
    state = workflow_pb2.InstanceState.Name(instance.state).removeprefix("INSTANCE_STATE_").lower()
    if instance.state == workflow_pb2.INSTANCE_STATE_INCIDENT:
        print(f"✘ {ns.ticket}: the step failed again", file=sys.stderr)
        for x in instance.incidents:
            if x.blocking and not x.resolved:
                print(f"  incident {x.incident_id} at {x.element_id}: {x.message}", file=sys.stderr)
        return 1
    print(f"✔ {ns.ticket}: incident {ns.incident} resolved; the process is {state}")
    return 0


def parse_assignment(text: str) -> tuple[str, Any]:
    """`name=value`; the value read as JSON where it is JSON (4, true, "x", [1, 2]), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"--set {text!r}: write name=value, e.g. --set rework_estimate=4")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value
