"""What the workflow use cases need from the outside world (implemented in adapters/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from services.workflow.application.announcements import Envelope
from services.workflow.application.engine import ActiveStep, ProcessEngine
from services.workflow.domain.calendar import BusinessCalendar
from services.workflow.domain.sla import SlaClock
from services.workflow.domain.tasks import TaskState, WorkTask


@dataclass(frozen=True, slots=True)
class Deployment:
    deployment_id: str
    organization: str
    version: int
    checksum: str
    name: str
    main_process: str
    process_ids: tuple[str, ...]
    description: str
    deployed_by: str
    deployed_at: datetime
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Bundle:
    """A validated bundle, ready to store and run (what the adapter compiled from the files)."""

    checksum: str
    name: str
    main_process: str
    process_ids: tuple[str, ...]
    files: Mapping[str, bytes]
    warnings: tuple[str, ...]


class BundleCompiler(Protocol):
    def compile(self, files: Mapping[str, bytes]) -> Bundle:
        """Raises BundleInvalid naming each file, element and problem."""
        ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """A deployment ready to run: its engine and its calendars."""

    deployment: Deployment
    engine: ProcessEngine
    calendars: Mapping[str, BusinessCalendar]
    default_calendar: str


class Runtimes(Protocol):
    """Parsed deployments, cached: parsing happens once per deployment and process."""

    def cached(self, deployment_id: str) -> Runtime | None: ...

    async def runtime(
        self, deployment: Deployment, load_files: Callable[[], Awaitable[Mapping[str, bytes]]]
    ) -> Runtime: ...


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    element_id: str
    message: str
    at: datetime
    resolved: bool = False
    #: The process stopped here (diagram code failed) until someone resolves it (ResolveIncident
    #: runs the step again); otherwise a problem it noted and went on past.
    blocking: bool = False


@dataclass(slots=True)
class Instance:
    ticket_number: str
    organization: str
    deployment_id: str
    process_id: str
    state: str  # running | completed | cancelled | incident
    engine_state: bytes
    revision: int
    started_at: datetime
    wake_at: datetime | None = None
    ended_at: datetime | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    active_steps: list[ActiveStep] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    #: The wake-up time this instance was last woken for (to measure lateness; not stored).
    woken_for: datetime | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor_subject: str
    actor_role: str
    action: str
    element_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class TaskQuery:
    organization: str
    states: tuple[TaskState, ...] = ()
    assignee: str = ""
    candidate_groups: tuple[str, ...] = ()
    ticket_number: str = ""
    after: tuple[datetime, str] | None = None  # (created_at, task_id) of the last row of the previous page
    limit: int = 50


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    organization: str
    states: tuple[str, ...] = ()
    process_id: str = ""
    deployment_version: int = 0  # 0: any
    after: tuple[datetime, str] | None = None  # (started_at, ticket_number) of the last row of the previous page
    limit: int = 50


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """An instance as a list shows it: without its engine state and variables (`instance` has
    them empty; never save it), with the version of the deployment it runs on."""

    instance: Instance
    deployment_version: int


class DeploymentRepository(Protocol):
    async def latest(self, org: str) -> Deployment | None: ...

    async def get(self, deployment_id: str) -> Deployment | None: ...

    async def files(self, deployment_id: str) -> dict[str, bytes]: ...

    async def add(self, deployment: Deployment, files: Mapping[str, bytes]) -> None: ...

    async def list(self, org: str, after_version: int | None, limit: int) -> list[Deployment]: ...


class InstanceRepository(Protocol):
    async def existing(self, ticket_numbers: Sequence[str]) -> set[str]:
        """Which of these tickets already have an instance."""
        ...

    async def get(self, ticket_number: str, *, for_update: bool = False, skip_locked: bool = False) -> Instance | None:
        """With `skip_locked`, an instance another worker holds reads as None (FOR UPDATE SKIP LOCKED)."""
        ...

    async def add(self, instance: Instance) -> None: ...

    async def save(self, instance: Instance) -> None: ...

    async def earliest_wake_up(self) -> datetime | None: ...

    async def claim_due(self, now: datetime, limit: int) -> list[Instance]:
        """Running instances whose wake-up time has come, earliest first, locked for this
        transaction; those another worker holds are skipped."""
        ...

    async def summaries(self, q: InstanceQuery) -> list[InstanceSummary]:
        """The instances `q` selects, most recently started first."""
        ...


class TaskRepository(Protocol):
    async def get(self, task_id: str, *, for_update: bool = False) -> WorkTask | None: ...

    async def add(self, task: WorkTask) -> None: ...

    async def save(self, task: WorkTask) -> None: ...

    async def open_of(self, ticket_number: str) -> list[WorkTask]: ...

    async def performers(self, ticket_number: str, element_ids: Sequence[str]) -> set[str]:
        """Who completed those tasks of the ticket (for four-eyes rules)."""
        ...

    async def query(self, q: TaskQuery) -> list[WorkTask]: ...


class HistoryLog(Protocol):
    async def add(self, ticket_number: str, entries: Sequence[HistoryEntry]) -> None: ...

    async def of(self, ticket_number: str) -> list[HistoryEntry]: ...


class ClockRepository(Protocol):
    async def of(self, ticket_number: str) -> list[SlaClock]: ...

    async def save_all(self, ticket_number: str, clocks: Sequence[SlaClock], *, new: bool = False) -> None:
        """Replace the ticket's clocks (`new`: the instance is being created now)."""
        ...


class MessageLog(Protocol):
    async def seen(self, org: str, message_id: str) -> str | None:
        """The ticket a message id was delivered to, if it was."""
        ...

    async def record(self, org: str, message_id: str, name: str, ticket_number: str, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def deployments(self) -> DeploymentRepository: ...

    @property
    def instances(self) -> InstanceRepository: ...

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def history(self) -> HistoryLog: ...

    @property
    def clocks(self) -> ClockRepository: ...

    @property
    def messages(self) -> MessageLog: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def emit(self, envelope: Envelope) -> None:
        """Stage announcements; encoded into the outbox at commit, in the same transaction."""
        ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """`read_only`: a unit that only reads, every read seeing the same moment."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def new_id(self) -> str: ...
