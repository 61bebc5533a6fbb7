"""A unit of work over one SQL transaction: repositories share the connection, and staged events
are written to the outbox just before COMMIT, so state and events commit together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from supportflow.events.v1 import events_pb2

from services.intake.adapters import tables
from services.intake.adapters.event_codec import encode
from services.intake.adapters.sql_repository import SqlRequestLog, SqlTicketRepository
from services.intake.adapters.timeline import timeline_row
from services.intake.application.ports import Clock
from services.intake.domain.events import IntakeEvent
from services.intake.domain.model import Actor
from services.kit.db import read_as_of_one_moment
from services.kit.outbox import add_to_outbox


class SqlUnitOfWork:
    tickets: SqlTicketRepository
    requests: SqlRequestLog

    def __init__(
        self, engine: AsyncEngine, clock: Clock, on_commit: Callable[[], None], *, read_only: bool = False
    ) -> None:
        self._engine, self._clock, self._on_commit = engine, clock, on_commit
        self._read_only = read_only
        self._conn: AsyncConnection | None = None
        self._staged: list[tuple[Actor, IntakeEvent]] = []

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        if self._read_only:
            # A ticket is never shown with an event on its timeline whose change (e.g. the handler
            # it names) it does not show yet.
            await read_as_of_one_moment(self._conn)
        await self._conn.begin()
        self.tickets = SqlTicketRepository(self._conn)
        self.requests = SqlRequestLog(self._conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    def emit(self, actor: Actor, events: Sequence[IntakeEvent]) -> None:
        self._staged.extend((actor, e) for e in events)

    async def commit(self) -> None:
        assert self._conn is not None
        envelopes = encode_staged(self._staged, self._clock.now())
        await add_to_outbox(self._conn, tables.outbox, envelopes)
        if envelopes:
            await self._conn.execute(tables.timeline.insert(), [timeline_row(e) for e in envelopes])
        await self._conn.commit()
        self._staged.clear()
        if envelopes:
            self._on_commit()


def encode_staged(staged: Sequence[tuple[Actor, IntakeEvent]], now: datetime) -> list[events_pb2.Event]:
    """The envelopes of a transaction's staged events, in the order they were emitted."""
    return [env for actor, e in staged for env in encode([e], actor, now)]


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine, clock: Clock, on_commit: Callable[[], None]) -> None:
        self._engine, self._clock, self._on_commit = engine, clock, on_commit

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._clock, self._on_commit, read_only=read_only)
