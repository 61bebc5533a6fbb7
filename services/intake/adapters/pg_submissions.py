"""SubmitTicket's group commit on PostgreSQL, straight through asyncpg (the hot path).

The same rows as `SqlUnitOfWork` would write for a batch — tickets, attachments, request log,
outbox, timeline, the day's counter — built by the same functions, in one transaction; only the
execution skips SQLAlchemy's layer (see `services.kit.pg_direct` for why). A batch is five round
trips whatever its size: BEGIN, the related-ticket look-up, the counter, one statement inserting
into all five tables (the writes are staged until commit), COMMIT — each round trip also being a
wake-up of the server and a context switch on a busy machine. Everything else in intake, and
SQLite, uses `SqlUnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date
from types import TracebackType
from typing import Any, Self

import asyncpg
from asyncpg.transaction import Transaction

from services.intake.adapters import tables as t
from services.intake.adapters.sql_repository import (
    new_attachment_rows,
    newest_first,
    recorded_request,
    request_rows,
    ticket_row,
)
from services.intake.adapters.timeline import timeline_row
from services.intake.adapters.unit_of_work import encode_staged
from services.intake.application.ports import Clock, DuplicateRequest, RecordedRequest
from services.intake.domain.events import IntakeEvent
from services.intake.domain.model import Actor, Ticket
from services.intake.domain.numbering import ticket_numbers
from services.kit.outbox import outbox_rows
from services.kit.pg_direct import DirectConnections, InsertInto, insert_together

_TICKETS = InsertInto.of(t.tickets)
_ATTACHMENTS = InsertInto.of(t.attachments)
_REQUESTS = InsertInto.of(t.requests)
_OUTBOX = InsertInto.of(t.outbox)
_TIMELINE = InsertInto.of(t.timeline)

# Only when a batch met a request id seen before (submitting.py checks ids optimistically).
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


#: Rows staged for the one INSERT statement at commit, per table.
Staged = dict[InsertInto, list[dict[str, Any]]]


class PgSubmissionTickets:
    def __init__(self, conn: asyncpg.Connection, staged: Staged) -> None:
        self._conn, self._staged = conn, staged

    async def allocate_numbers(self, org: str, prefix: str, day: date, count: int) -> list[str]:
        if count == 0:
            return []
        last: int = await self._conn.fetchval(_BUMP_COUNTER, org, day.strftime("%Y%m%d"), count)
        return ticket_numbers(prefix, day, last, count)

    async def add_many(self, tickets: Sequence[tuple[Ticket, Sequence[bytes]]]) -> None:
        self._staged[_TICKETS].extend(ticket_row(ticket) for ticket, _ in tickets)
        self._staged[_ATTACHMENTS].extend(new_attachment_rows(tickets))

    async def recent_numbers_of(self, org: str, requester_ids: Collection[str], limit: int) -> dict[str, list[str]]:
        if not requester_ids:
            return {}
        rows = await self._conn.fetch(_RECENT_NUMBERS, org, sorted(set(requester_ids)), limit)
        return newest_first((r["requester_id"], r["ticket_number"], r["submitted_at"]) for r in rows)


class PgSubmissionRequests:
    def __init__(self, conn: asyncpg.Connection, staged: Staged) -> None:
        self._conn, self._staged = conn, staged

    async def find_many(self, org: str, request_ids: Collection[str]) -> dict[str, RecordedRequest]:
        ids = [r for r in request_ids if r]
        if not ids:
            return {}
        rows = await self._conn.fetch(_FIND_REQUESTS, org, ids)
        return {r["request_id"]: recorded_request(r) for r in rows}

    async def record_many(self, org: str, requests: Sequence[tuple[str, RecordedRequest]]) -> None:
        """Staged: a request id recorded before fails the commit with DuplicateRequest."""
        self._staged[_REQUESTS].extend(request_rows(org, requests))


class PgSubmissionUnitOfWork:
    tickets: PgSubmissionTickets
    requests: PgSubmissionRequests

    def __init__(self, connections: DirectConnections, clock: Clock, on_commit: Callable[[], None]) -> None:
        self._connections, self._clock, self._on_commit = connections, clock, on_commit
        self._lease: AbstractAsyncContextManager[asyncpg.Connection] | None = None
        self._conn: asyncpg.Connection | None = None
        self._transaction: Transaction | None = None
        self._events: list[tuple[Actor, IntakeEvent]] = []
        # In this order: attachments and timeline lines refer to their tickets.
        self._rows: Staged = {table: [] for table in (_TICKETS, _ATTACHMENTS, _REQUESTS, _OUTBOX, _TIMELINE)}

    async def __aenter__(self) -> Self:
        self._lease = self._connections.acquire()
        self._conn = await self._lease.__aenter__()
        try:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
        except BaseException as exc:
            await self._lease.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self.tickets = PgSubmissionTickets(self._conn, self._rows)
        self.requests = PgSubmissionRequests(self._conn, self._rows)
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
        self._events.extend((actor, e) for e in events)

    async def commit(self) -> None:
        assert self._conn is not None
        assert self._transaction is not None
        envelopes = encode_staged(self._events, self._clock.now())
        self._rows[_OUTBOX].extend(outbox_rows(envelopes))
        self._rows[_TIMELINE].extend(timeline_row(e) for e in envelopes)
        try:
            await insert_together(self._conn, list(self._rows.items()))
        except asyncpg.UniqueViolationError as exc:
            if exc.table_name != t.requests.name:
                raise
            raise DuplicateRequest(", ".join(r["request_id"] for r in self._rows[_REQUESTS])) from exc
        await self._transaction.commit()
        self._events.clear()
        if envelopes:
            self._on_commit()


class PgSubmissionUnitOfWorkFactory:
    def __init__(self, connections: DirectConnections, clock: Clock, on_commit: Callable[[], None]) -> None:
        self._connections, self._clock, self._on_commit = connections, clock, on_commit

    def __call__(self) -> PgSubmissionUnitOfWork:
        return PgSubmissionUnitOfWork(self._connections, self._clock, self._on_commit)
