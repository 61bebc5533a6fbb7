"""`supportflow process validate|deploy <folder>`: a process admin's bundle, checked or deployed by
the running workflow service (DeployProcess, dry_run for validate). A gRPC client: it needs only
the contracts in proto/, like any upstream system."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
from supportflow.workflow.v1 import workflow_pb2, workflow_pb2_grpc

from services.cli_client import bearer, report_error

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
    metadata = bearer(ns.token, org=ns.org, subject="process-admin", roles=["process_admin"])
    files = bundle_files(ns.folder)
    request = workflow_pb2.DeployProcessRequest(
        organization=ns.org, files=files, dry_run=ns.action == "validate", description=ns.description
    )
    with grpc.insecure_channel(ns.address) as channel:
        stub = workflow_pb2_grpc.WorkflowServiceStub(channel)
        try:
            response = stub.DeployProcess(request, metadata=metadata, timeout=60)
        except grpc.RpcError as error:
            return report_error(error, str(ns.folder), "workflow")
    for warning in response.warnings:
        print(f"warning: {warning}")
    if ns.action == "validate":
        print(f"✔ {ns.folder}: {len(files)} files are valid; deploying would make version {response.next_version}")
    else:
        d = response.deployment
        print(f"✔ deployed {ns.folder} as {ns.org} version {d.version} ({', '.join(d.process_ids)})")
        print("  new tickets start on it; running tickets keep the version they started on")
    return 0
