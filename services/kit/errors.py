"""The error tree every service's domain errors derive from.

Plain Python (no gRPC): the kit's error interceptor maps each `ErrorCode` to a gRPC status in one
place (`services.kit.grpc.errors`). Tree:

    DomainError
    ├── InvalidArgument       (INVALID_ARGUMENT, with field violations)
    ├── NotFound              (NOT_FOUND)
    ├── AlreadyExists         (ALREADY_EXISTS)
    ├── FailedPrecondition    (FAILED_PRECONDITION)
    ├── PermissionDenied      (PERMISSION_DENIED)
    ├── Unauthenticated       (UNAUTHENTICATED)
    └── Unavailable           (UNAVAILABLE: a dependency is down, retry later)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class ErrorCode(enum.Enum):
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One offending field, named by its path in the request (e.g. `requester.name`)."""

    field: str
    description: str


class DomainError(Exception):
    code: ErrorCode = ErrorCode.FAILED_PRECONDITION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = ErrorCode.INVALID_ARGUMENT

    def __init__(self, violations: Iterable[FieldViolation], message: str | None = None) -> None:
        self.violations = tuple(violations)
        if not self.violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
        more = len(self.violations) - 5
        if more > 0:
            summary += f"; and {more} more"
        super().__init__(message or f"invalid request: {summary}")

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = ErrorCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = ErrorCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = ErrorCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Unavailable(DomainError):
    code = ErrorCode.UNAVAILABLE
