"""The workflow service's domain errors: one base, mapped to gRPC statuses by the kit's error interceptor."""

from __future__ import annotations

from services.kit import errors as kit


class WorkflowError(kit.DomainError):
    """Base of every error the workflow service raises on purpose."""


class InvalidRequest(WorkflowError, kit.InvalidArgument):
    """Malformed input; names each offending field."""


class BundleInvalid(WorkflowError, kit.InvalidArgument):
    """A deployment bundle was rejected; each violation names file, element and problem."""


class NotFound(WorkflowError, kit.NotFound):
    pass


class TaskAlreadyCompleted(WorkflowError, kit.FailedPrecondition):
    pass


class TaskNotOpen(WorkflowError, kit.FailedPrecondition):
    """Cancelled, or claimed by someone else."""


class FourEyesViolation(WorkflowError, kit.FailedPrecondition):
    """The caller performed the work this task checks (reviewer = performer, approver = author)."""


class NotACandidate(WorkflowError, kit.PermissionDenied):
    pass


class InstanceNotWaiting(WorkflowError, kit.FailedPrecondition):
    """The process is not at a step that accepts this message (or has ended)."""


class NotAllowed(WorkflowError, kit.PermissionDenied):
    pass
