"""What the use cases need from the process engine, as plain values (the SpiffWorkflow adapter
implements it in adapters/engine/runner.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.workflow.domain.tasks import FormField


@dataclass(frozen=True, slots=True)
class OpenedTask:
    """A user task the process now waits on."""

    task_id: str
    element_id: str
    name: str
    candidate_groups: tuple[str, ...]
    assignee: str
    form: tuple[FormField, ...]
    #: Ids of tasks whose performer may not complete this one (four-eyes).
    exclude_performers_of: tuple[str, ...]
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnteredStep:
    """A flow node the instance reached (its properties drive SLA clocks)."""

    element_id: str
    name: str
    element_type: str
    properties: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ThrownEvent:
    """A message the process threw to the outside world, named like an event type."""

    name: str
    element_id: str
    variables: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EngineIncident:
    element_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ActiveStep:
    element_id: str
    name: str
    element_type: str


@dataclass(frozen=True, slots=True)
class Advance:
    """What one operation on an instance did, in order of happening where it matters."""

    opened: tuple[OpenedTask, ...] = ()
    #: User tasks that stopped waiting without being completed (a boundary event, cancellation).
    withdrawn: tuple[str, ...] = ()
    entered: tuple[EnteredStep, ...] = ()
    thrown: tuple[ThrownEvent, ...] = ()
    finished: bool = False
    incident: EngineIncident | None = None
    next_timer_at: datetime | None = None
    active: tuple[ActiveStep, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)


def combine(first: Advance, then: Advance) -> Advance:
    """Two operations run back to back, reported as one."""
    return Advance(
        opened=first.opened + then.opened,
        withdrawn=first.withdrawn + then.withdrawn,
        entered=first.entered + then.entered,
        thrown=first.thrown + then.thrown,
        finished=then.finished,
        incident=then.incident or first.incident,
        next_timer_at=then.next_timer_at,
        active=then.active,
        variables=then.variables,
    )


class NotWaitingFor(Exception):
    """The instance has no step waiting for that message or task."""


class ProcessInstanceHandle(Protocol):
    """An instance in memory, between load and save."""

    def dump(self) -> bytes: ...


class ProcessEngine(Protocol):
    """Runs one deployment's process; every method advances as far as the engine can go."""

    def start(self, variables: Mapping[str, Any]) -> tuple[ProcessInstanceHandle, Advance]: ...

    def load(self, state: bytes) -> ProcessInstanceHandle: ...

    def complete_task(self, instance: ProcessInstanceHandle, task_id: str, variables: Mapping[str, Any]) -> Advance: ...

    def deliver_message(self, instance: ProcessInstanceHandle, name: str, variables: Mapping[str, Any]) -> Advance: ...

    def wake(self, instance: ProcessInstanceHandle) -> Advance:
        """Fire the timers that are due and run on."""
        ...

    def cancel(self, instance: ProcessInstanceHandle) -> Advance: ...

    def retry(self, instance: ProcessInstanceHandle, variables: Mapping[str, Any]) -> Advance:
        """Run the steps whose code failed again, from the data they started with plus
        `variables`, and on. NotWaitingFor when no step failed."""
        ...
