"""User tasks as agents see them in their work list, and the rules for claiming and completing
them: candidate groups, four-eyes exclusions, form validation. Pure; no I/O."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from services.kit.errors import FieldViolation
from services.workflow.domain.errors import (
    FourEyesViolation,
    InvalidRequest,
    NotACandidate,
    NotAllowed,
    TaskAlreadyCompleted,
    TaskNotOpen,
)

#: May claim and complete any task of their organisation (SOP §3: a team lead may correct tier-1).
SUPERVISOR_ROLES = frozenset({"team_lead"})


@dataclass(frozen=True, slots=True)
class FormField:
    """A field of a user task's form (camunda:formData)."""

    id: str
    label: str
    type: str  # string | long | boolean | enum | date
    required: bool = False
    choices: tuple[str, ...] = ()  # for enum


class TaskState(enum.Enum):
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Worker:
    """Who is acting: the token's subject, roles and groups (teams, queues)."""

    subject: str
    roles: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class WorkTask:
    task_id: str
    ticket_number: str
    organization: str
    element_id: str
    name: str
    state: TaskState
    candidate_groups: tuple[str, ...]
    form: tuple[FormField, ...]
    created_at: datetime
    assignee: str = ""
    exclude_performers_of: tuple[str, ...] = ()
    excluded_subjects: tuple[str, ...] = ()
    priority: str | None = None
    due_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    result: Mapping[str, Any] | None = None
    #: The CompleteTask request that completed it ("": none given); its retry gets the same answer.
    completion_request_id: str = ""

    def may_work_on(self, worker: Worker) -> bool:
        return (
            worker.subject == self.assignee
            or not worker.roles.isdisjoint(SUPERVISOR_ROLES)
            or not worker.groups.isdisjoint(self.candidate_groups)
            or (not self.candidate_groups and not self.assignee)
        )

    def _require_open_for(self, worker: Worker, action: str) -> None:
        if self.state is TaskState.COMPLETED:
            raise TaskAlreadyCompleted(
                f"task {self.task_id} ({self.name}) was already completed by {self.completed_by}"
            )
        if self.state is TaskState.CANCELLED:
            raise TaskNotOpen(f"task {self.task_id} ({self.name}) was cancelled; the process moved on")
        if not self.may_work_on(worker):
            groups = ", ".join(self.candidate_groups) or "(none)"
            raise NotACandidate(f"{action} task {self.name} needs membership of one of the groups: {groups}")
        taken = self.state is TaskState.CLAIMED and self.assignee not in ("", worker.subject)
        if taken and worker.roles.isdisjoint(SUPERVISOR_ROLES):
            raise TaskNotOpen(f"task {self.task_id} ({self.name}) is claimed by {self.assignee}")

    def claim(self, worker: Worker, *, for_subject: str = "") -> WorkTask:
        """The task claimed by `worker`, or — a team lead dispatching work — for `for_subject`
        (whose groups are the lead's to know)."""
        self._require_open_for(worker, "claiming")
        assignee = for_subject or worker.subject
        if assignee != worker.subject and worker.roles.isdisjoint(SUPERVISOR_ROLES):
            raise NotAllowed(f"only a team lead gives a task to someone else ({worker.subject} asked for {assignee})")
        self._check_four_eyes(assignee, self.excluded_subjects)
        return replace(self, state=TaskState.CLAIMED, assignee=assignee)

    def complete(
        self,
        worker: Worker,
        variables: Mapping[str, Any],
        excluded: Collection[str],
        now: datetime,
        request_id: str = "",
    ) -> tuple[WorkTask, dict[str, Any]]:
        """`excluded`: who performed the tasks this one may not be completed by (four-eyes)."""
        self._require_open_for(worker, "completing")
        self._check_four_eyes(worker.subject, excluded)
        cleaned = validate_form(self.form, variables)
        done = replace(
            self,
            state=TaskState.COMPLETED,
            assignee=self.assignee or worker.subject,
            completed_at=now,
            completed_by=worker.subject,
            result=cleaned,
            excluded_subjects=tuple(sorted(set(excluded))),
            completion_request_id=request_id,
        )
        return done, cleaned

    def is_retry(self, worker: Worker, variables: Mapping[str, Any], request_id: str) -> bool:
        """True when this completion is `worker` sending again the request that completed the task
        (e.g. after a lost answer): it gets the same answer, and nothing happens twice. The same
        request id with other values is refused."""
        if not request_id or self.state is not TaskState.COMPLETED or self.completion_request_id != request_id:
            return False
        if self.completed_by != worker.subject:
            return False
        if validate_form(self.form, variables) != dict(self.result or {}):
            raise InvalidRequest(
                [FieldViolation("request_id", f"completed task {self.task_id} with other values: use a new request id")]
            )
        return True

    def _check_four_eyes(self, subject: str, excluded: Collection[str]) -> None:
        if subject in excluded:
            steps = ", ".join(self.exclude_performers_of)
            raise FourEyesViolation(
                f"{subject} performed {steps} for ticket {self.ticket_number} and so may not "
                f"complete {self.name}: four-eyes principle, another person must do it"
            )


def validate_form(form: tuple[FormField, ...], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Check submitted variables against the task's form; returns them typed. Fields not on the form
    are refused when the task has a form (a typo must not silently pass)."""
    violations: list[FieldViolation] = []
    known = {f.id: f for f in form}
    out: dict[str, Any] = {}
    if form:
        for name in variables:
            if name not in known:
                violations.append(
                    FieldViolation(f"variables.{name}", f"is not a field of this task's form ({', '.join(known)})")
                )
    else:
        out.update(variables)
    for field in form:
        value = variables.get(field.id)
        if value is None or value == "":
            if field.required:
                violations.append(FieldViolation(f"variables.{field.id}", f"is required ({field.label})"))
            continue
        try:
            out[field.id] = _typed(field, value)
        except ValueError as exc:
            violations.append(FieldViolation(f"variables.{field.id}", str(exc)))
    if violations:
        raise InvalidRequest(violations)
    return out


def _typed(field: FormField, value: Any) -> Any:
    kind = field.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError(f"must be true or false, not {value!r}")
    if kind == "long":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"must be a whole number, not {value!r}")
        return int(value)
    if kind == "enum":
        if str(value) not in field.choices:
            raise ValueError(f"must be one of {', '.join(field.choices)}, not {value!r}")
        return str(value)
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, not {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {value!r}")
    return value
