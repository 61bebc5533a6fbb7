"""Intake's domain errors: one base, mapped to gRPC statuses by the kit's error interceptor."""

from __future__ import annotations

from services.kit import errors as kit


class IntakeError(kit.DomainError):
    """Base of every error intake raises on purpose."""


class InvalidTicket(IntakeError, kit.InvalidArgument):
    """The request is malformed; names each offending field."""


class TicketNotFound(IntakeError, kit.NotFound):
    pass


class TicketStateConflict(IntakeError, kit.FailedPrecondition):
    """The ticket's status does not allow the action (e.g. rating an open ticket)."""


class NotAllowed(IntakeError, kit.PermissionDenied):
    pass


class MalformedEvent(IntakeError):
    """An event that contradicts itself (its type names one payload, it carries another): never
    applied; the consumer dead-letters it instead of retrying."""
