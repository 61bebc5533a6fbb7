"""`supportflow process validate|deploy <folder>`: a process admin's bundle, checked or deployed by
the running workflow service (DeployProcess, dry_run for validate). A gRPC client: it needs only
the contracts in proto/, like any upstream system."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from supportflow.workflow.v1 import workflow_pb2, workflow_pb2_grpc

from services.kit.auth import mint_token
from services.kit.settings import DEV_JWT_SECRET

BUNDLE_SUFFIXES = (".bpmn", ".dmn", ".toml")
NOT_BUNDLE = {"organisations.toml"}  # intake's catalogue
NOT_BUNDLE_FOLDERS = {"notify"}  # the notify service's rules and templates


def bundle_files(folder: Path) -> list[workflow_pb2.BundleFile]:
    """Every .bpmn, .dmn and .toml under `folder` (intake's organisations.toml excepted)."""
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder")
    return [
        workflow_pb2.BundleFile(path=path.relative_to(folder).as_posix(), content=path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.suffix in BUNDLE_SUFFIXES
        and path.name not in NOT_BUNDLE
        and not NOT_BUNDLE_FOLDERS.intersection(path.relative_to(folder).parts)
    ]


def run(ns: argparse.Namespace) -> int:
    token = ns.token or mint_token(secret=DEV_JWT_SECRET, subject="process-admin", org=ns.org, roles=["process_admin"])
    files = bundle_files(ns.folder)
    request = workflow_pb2.DeployProcessRequest(
        organization=ns.org, files=files, dry_run=ns.action == "validate", description=ns.description
    )
    with grpc.insecure_channel(ns.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        try:
            response = stub.DeployProcess(request, metadata=(("authorization", f"Bearer {token}"),), timeout=60)
        except grpc.RpcError as error:
            return report_error(error, str(ns.folder))
    for warning in response.warnings:
        print(f"warning: {warning}")
    if ns.action == "validate":
        print(f"✔ {ns.folder}: {len(files)} files are valid; deploying would make version {response.next_version}")
    else:
        d = response.deployment
        print(f"✔ deployed {ns.folder} as {ns.org} version {d.version} ({', '.join(d.process_ids)})")
        print("  new tickets start on it; running tickets keep the version they started on")
    return 0


def report_error(error: grpc.RpcError, what: str) -> int:
    """Print a failed call's problem for a person (each field violation on its own line); the exit
    status: 2 when the service is not reachable, else 1."""
    code = error.code() if isinstance(error, grpc.Call) else None
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.UNAVAILABLE:
        print("✘ the workflow service is not reachable: start it with `./dev up` or pass --address", file=sys.stderr)
        return 2
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    details_any: list[Any] = list(status.details) if status is not None else []
    for detail in details_any:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(bad.field_violations)
    if violations:
        print(f"✘ {what} was rejected ({len(violations)} problems):", file=sys.stderr)
        for v in violations:
            print(f"  {v.field.removeprefix('files[').removesuffix(']')}: {v.description}", file=sys.stderr)
        return 1
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    print(f"✘ {code.name if code else 'error'}: {details}", file=sys.stderr)
    return 1
