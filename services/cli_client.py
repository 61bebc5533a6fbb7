"""What the command-line clients of the running services share (`supportflow process`,
`incidents`, `notices`): the bearer token — the one given, else a development token — and a failed
call told to a person. Clients of the public contracts only: no service code."""

from __future__ import annotations

import sys
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.kit.auth import mint_token
from services.kit.settings import DEV_JWT_SECRET

Metadata = tuple[tuple[str, str], ...]


def bearer(given: str, *, org: str, subject: str, roles: list[str]) -> Metadata:
    """The call metadata for token `given`, or for a development token of `subject` with `roles`
    (signed with the development key `supportflow up` uses)."""
    token = given or mint_token(secret=DEV_JWT_SECRET, subject=subject, org=org, roles=roles)
    return (("authorization", f"Bearer {token}"),)


def report_error(error: grpc.RpcError, what: str, service: str) -> int:
    """Print a failed call's problem for a person (each field violation on its own line); the exit
    status: 2 when the service is not reachable, else 1."""
    code = error.code() if isinstance(error, grpc.Call) else None
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.UNAVAILABLE:
        print(f"✘ the {service} service is not reachable: start it with `./dev up` or pass --address", file=sys.stderr)
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
