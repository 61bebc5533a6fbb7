"""notify's domain errors: one base, mapped to gRPC statuses by the kit's error interceptor.

NotifyError
├── RulesError          a rules, directory or template file was rejected; lists every problem
│   └── TemplateSetError  the template files in particular (syntax, unknown variables, names)
├── TemplateError       one template failed while rendering (names file and line)
├── InvalidRequest      a malformed ListNotifications / RetryNotification request (field violations)
├── NotificationNotFound  no such notification in the caller's organisation
├── NotAllowed          the caller's roles do not allow it
└── NotRetryable        RetryNotification on a notification that is sent, pending, or cannot be built
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.kit import errors as kit


class NotifyError(kit.DomainError):
    """Base of every error notify raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration file: which file, where in it, and what to do."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class RulesError(NotifyError, kit.InvalidArgument):
    """The notification configuration was rejected; the one in force stays in force.

    `problems` holds every problem found, in file order, so that one pass fixes them all."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("RulesError needs at least one problem")
        listing = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        kit.InvalidArgument.__init__(
            self,
            (kit.FieldViolation(f"{p.file}: {p.path}" if p.path else p.file, p.message) for p in self.problems),
            f"notification configuration rejected ({count} problem{'s' if count > 1 else ''}):\n{listing}",
        )


class TemplateSetError(RulesError):
    """The template files were rejected: a bad name, a syntax error, an unknown variable, a
    missing fallback (zh-CN) version."""


class TemplateError(NotifyError):
    """A template failed while rendering: an undefined variable, a sandbox violation, a value the
    template cannot handle. `file` and `line` locate it; the notice is not sent."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {reason}")


class InvalidRequest(NotifyError, kit.InvalidArgument):
    """Malformed input; names each offending field."""


class NotificationNotFound(NotifyError, kit.NotFound):
    pass


class NotAllowed(NotifyError, kit.PermissionDenied):
    pass


class NotRetryable(NotifyError, kit.FailedPrecondition):
    pass
