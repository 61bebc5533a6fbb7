"""The one place where domain errors become gRPC statuses (with `google.rpc` rich details)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.kit.errors import DomainError, ErrorCode, InvalidArgument

GRPC_CODES: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}

DETAILS_KEY = "grpc-status-details-bin"


def status_for(error: DomainError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """(code, message, trailing metadata carrying a `google.rpc.Status` with details)."""
    code = GRPC_CODES[error.code]
    details: list[any_pb2.Any] = []
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    return code, error.message, _trailer(code, error.message, details)


def internal_status(request_id: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """INTERNAL with a request id to quote in a bug report; never a stack trace."""
    message = f"internal error; quote request id {request_id} when reporting it"
    info = any_pb2.Any()
    info.Pack(error_details_pb2.RequestInfo(request_id=request_id))
    return grpc.StatusCode.INTERNAL, message, _trailer(grpc.StatusCode.INTERNAL, message, [info])


def _trailer(code: grpc.StatusCode, message: str, details: list[any_pb2.Any]) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return ((DETAILS_KEY, status.SerializeToString()),)
