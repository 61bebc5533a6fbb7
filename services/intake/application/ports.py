"""What the use cases need from the outside world, as protocols (implemented in adapters/)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from services.intake.domain.events import IntakeEvent
from services.intake.domain.model import Actor, AttachmentInfo, Comment, Priority, Ticket, TicketStatus


class DuplicateRequest(Exception):
    """Another call with the same request id committed first; retry to replay its result."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    operation: str
    fingerprint: str
    ticket_number: str
    result_id: str


@dataclass(frozen=True, slots=True)
class TicketFilter:
    organization: str
    statuses: tuple[TicketStatus, ...] = ()
    priority: Priority | None = None
    team: str = ""
    requester_id: str = ""
    assignee: str = ""
    #: Each must appear in the title or the description, ignoring case.
    words: tuple[str, ...] = ()
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Position after the last ticket of a page (newest-first order)."""

    submitted_at: datetime
    ticket_number: str


class SubmissionTickets(Protocol):
    """What storing submitted tickets needs (`submitting.commit_submissions`, the hot path)."""

    async def allocate_numbers(self, org: str, prefix: str, day: date, count: int) -> list[str]:
        """The next `count` consecutive numbers of that organisation and day. The counter stays
        locked until the transaction ends: numbers are gapless, unique across replicas, never reused."""
        ...

    async def add_many(self, tickets: Sequence[tuple[Ticket, Sequence[bytes]]]) -> None:
        """Store new tickets with their attachments' contents (in the tickets' attachment order)."""
        ...

    async def recent_numbers_of(self, org: str, requester_ids: Collection[str], limit: int) -> dict[str, list[str]]:
        """Each requester's latest ticket numbers, newest first (requesters without any are absent)."""
        ...


class TicketRepository(SubmissionTickets, Protocol):
    async def get(self, ticket_number: str, *, for_update: bool = False) -> Ticket | None: ...

    async def save(self, ticket: Ticket) -> None:
        """Persist the mutable fields (status, description, environment, …) of an existing ticket."""
        ...

    async def add_attachments(
        self, ticket_number: str, comment_id: str | None, infos: Sequence[AttachmentInfo], contents: Sequence[bytes]
    ) -> None: ...

    async def add_comment(self, comment: Comment, contents: Sequence[bytes]) -> None: ...

    async def get_comment(self, comment_id: str) -> Comment | None: ...

    async def attachment(self, ticket_number: str, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None: ...

    async def list(self, flt: TicketFilter, after: PageCursor | None, limit: int) -> list[Ticket]: ...


class SubmissionRequests(Protocol):
    async def find_many(self, org: str, request_ids: Collection[str]) -> dict[str, RecordedRequest]: ...

    async def record_many(self, org: str, requests: Sequence[tuple[str, RecordedRequest]]) -> None:
        """Raises DuplicateRequest if a concurrent call recorded one of the request ids first."""
        ...


class RequestLog(SubmissionRequests, Protocol):
    async def find(self, org: str, request_id: str) -> RecordedRequest | None: ...

    async def record(self, org: str, request_id: str, request: RecordedRequest) -> None:
        """Raises DuplicateRequest if a concurrent call recorded the same request id first."""
        ...


class SubmissionUnitOfWork(Protocol):
    """One transaction storing a batch of submitted tickets with their events."""

    @property
    def tickets(self) -> SubmissionTickets: ...

    @property
    def requests(self) -> SubmissionRequests: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def emit(self, actor: Actor, events: Sequence[IntakeEvent]) -> None:
        """Stage events; they are written to the outbox at commit, in the same transaction."""
        ...

    async def commit(self) -> None: ...


class SubmissionUnitOfWorkFactory(Protocol):
    def __call__(self) -> SubmissionUnitOfWork: ...


class UnitOfWork(SubmissionUnitOfWork, Protocol):
    """One transaction over every intake table."""

    @property
    def tickets(self) -> TicketRepository: ...

    @property
    def requests(self) -> RequestLog: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """`read_only`: a unit that only reads, every read seeing the same moment."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def new_id(self) -> str: ...
