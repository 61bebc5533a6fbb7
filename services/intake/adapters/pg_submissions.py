"""SubmitTicket's group commit on PostgreSQL, straight through asyncpg (the hot path).

The same rows as `SqlUnitOfWork` would write for a batch — tickets, attachments, request log,
outbox, timeline, the day's counter — built by the same functions, in one transaction; only the
execution skips SQLAlchemy's layer (see `services.kit.pg_direct` for why). A batch is ten round
trips whatever its size: BEGIN, the request-id and related-ticket look-ups, the counter, one
pipelined INSERT per table, COMMIT. Everything else in intake, and SQLite, uses `SqlUnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date
from types import TracebackType
from typing import Self

import asyncpg
from asyncpg.transaction import Transaction

from services.intake.adapters import tables as t
from services.intake.adapters.sql_repository import new_attachment_rows, newest_first, request_rows, ticket_row
from services.intake.adapters.timeline import timeline_row
from services.intake.adapters.unit_of_work import encode_staged
from services.intake.application.ports import Clock, DuplicateRequest, RecordedRequest
from services.intake.domain.events import IntakeEvent
from services.intake.domain.model import Actor, Ticket
from services.intake.domain.numbering import format_ticket_number
from services.kit.outbox import outbox_rows
from services.kit.pg_direct import DirectConnections, InsertInto

_TICKETS = InsertInto.of(t.tickets)
_ATTACHMENTS = InsertInto.of(t.attachments)
_REQUESTS = InsertInto.of(t.requests)
_OUTBOX = InsertInto.of(t.outbox)
_TIMELINE = InsertInto.of(t.timeline)

# varchar[], not text[]: a text array would cast the column and lose its primary-key index.
_FIND_REQUESTS = f"""
    SELECT request_id, operation, fingerprint, ticket_number, result_id FROM {t.requests.name}
    WHERE organization = $1 AND request_id = ANY($2::varchar[])"""

# One index walk of $3 rows per requester (ix_intake_tickets_requester, in its own order: sorting by
# anything more would read all of a requester's tickets, thousands for an integration's account).
_RECENT_NUMBERS = f"""
    SELECT r.requester_id, newest.ticket_number, newest.submitted_at
    FROM unnest($2::varchar[]) AS r(requester_id)
    CROSS JOIN LATERAL (
        SELECT ticket_number, submitted_at FROM {t.tickets.name}
        WHERE organization = $1 AND requester_id = r.requester_id
        ORDER BY submitted_at DESC LIMIT $3
    ) AS newest"""

_BUMP_COUNTER = f"""
    INSERT INTO {t.ticket_counters.name} AS c (organization, day, last_serial) VALUES ($1, $2, $3)
    ON CONFLICT (organization, day) DO UPDATE SET last_serial = c.last_serial + EXCLUDED.last_serial
    RETURNING last_serial"""


class PgSubmissionTickets:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def allocate_numbers(self, org: str, prefix: str, day: date, count: int) -> list[str]:
        if count == 0:
            return []
        last: int = await self._conn.fetchval(_BUMP_COUNTER, org, day.strftime("%Y%m%d"), count)
        return [format_ticket_number(prefix, day, serial) for serial in range(last - count + 1, last + 1)]

    async def add_many(self, tickets: Sequence[tuple[Ticket, Sequence[bytes]]]) -> None:
        await _TICKETS.execute(self._conn, [ticket_row(ticket) for ticket, _ in tickets])
        await _ATTACHMENTS.execute(self._conn, new_attachment_rows(tickets))

    async def recent_numbers_of(self, org: str, requester_ids: Collection[str], limit: int) -> dict[str, list[str]]:
        if not requester_ids:
            return {}
        rows = await self._conn.fetch(_RECENT_NUMBERS, org, sorted(set(requester_ids)), limit)
        return newest_first((r["requester_id"], r["ticket_number"], r["submitted_at"]) for r in rows)


class PgSubmissionRequests:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def find_many(self, org: str, request_ids: Collection[str]) -> dict[str, RecordedRequest]:
        ids = [r for r in request_ids if r]
        if not ids:
            return {}
        rows = await self._conn.fetch(_FIND_REQUESTS, org, ids)
        return {
            r["request_id"]: RecordedRequest(r["operation"], r["fingerprint"], r["ticket_number"], r["result_id"])
            for r in rows
        }

    async def record_many(self, org: str, requests: Sequence[tuple[str, RecordedRequest]]) -> None:
        rows = request_rows(org, requests)
        try:
            await _REQUESTS.execute(self._conn, rows)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateRequest(", ".join(r["request_id"] for r in rows)) from exc


class PgSubmissionUnitOfWork:
    tickets: PgSubmissionTickets
    requests: PgSubmissionRequests

    def __init__(self, connections: DirectConnections, clock: Clock, on_commit: Callable[[], None]) -> None:
        self._connections, self._clock, self._on_commit = connections, clock, on_commit
        self._lease: AbstractAsyncContextManager[asyncpg.Connection] | None = None
        self._conn: asyncpg.Connection | None = None
        self._transaction: Transaction | None = None
        self._staged: list[tuple[Actor, IntakeEvent]] = []

    async def __aenter__(self) -> Self:
        self._lease = self._connections.acquire()
        self._conn = await self._lease.__aenter__()
        try:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
        except BaseException as exc:
            await self._lease.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self.tickets = PgSubmissionTickets(self._conn)
        self.requests = PgSubmissionRequests(self._conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._lease is not None
        assert self._conn is not None
        try:
            if self._conn.is_in_transaction() and not self._conn.is_closed():
                assert self._transaction is not None
                await self._transaction.rollback()
        finally:
            await self._lease.__aexit__(exc_type, exc, tb)
            self._lease = self._conn = self._transaction = None

    def emit(self, actor: Actor, events: Sequence[IntakeEvent]) -> None:
        self._staged.extend((actor, e) for e in events)

    async def commit(self) -> None:
        assert self._conn is not None
        assert self._transaction is not None
        envelopes = encode_staged(self._staged, self._clock.now())
        await _OUTBOX.execute(self._conn, outbox_rows(envelopes))
        await _TIMELINE.execute(self._conn, [timeline_row(e) for e in envelopes])
        await self._transaction.commit()
        self._staged.clear()
        if envelopes:
            self._on_commit()


class PgSubmissionUnitOfWorkFactory:
    def __init__(self, connections: DirectConnections, clock: Clock, on_commit: Callable[[], None]) -> None:
        self._connections, self._clock, self._on_commit = connections, clock, on_commit

    def __call__(self) -> PgSubmissionUnitOfWork:
        return PgSubmissionUnitOfWork(self._connections, self._clock, self._on_commit)
