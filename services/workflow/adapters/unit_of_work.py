"""A unit of work over one SQL transaction: repositories share the connection, and staged
announcements are encoded into the outbox just before COMMIT, so state and events commit together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kit.db import read_as_of_one_moment
from services.kit.outbox import add_to_outbox
from services.workflow.adapters import tables
from services.workflow.adapters.announcing import encode_envelope
from services.workflow.adapters.sql_repository import (
    Db,
    SqlClocks,
    SqlDeployments,
    SqlHistory,
    SqlInstances,
    SqlMessages,
    SqlTasks,
)
from services.workflow.application.announcements import Envelope

#: Told after each COMMIT whether events were staged, and which instance wake-up times were written.
OnCommit = Callable[[bool, list[datetime]], None]


class SqlUnitOfWork:
    deployments: SqlDeployments
    instances: SqlInstances
    tasks: SqlTasks
    history: SqlHistory
    clocks: SqlClocks
    messages: SqlMessages

    def __init__(self, engine: AsyncEngine, on_commit: OnCommit, *, read_only: bool = False) -> None:
        self._engine, self._on_commit = engine, on_commit
        self._read_only = read_only
        self._conn: AsyncConnection | None = None
        self._staged: list[Envelope] = []

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        if self._read_only:
            # An instance is never shown with history its state does not show yet.
            await read_as_of_one_moment(self._conn)
        await self._conn.begin()
        db = self._db = Db(self._conn)
        self.deployments, self.instances, self.tasks = SqlDeployments(db), SqlInstances(db), SqlTasks(db)
        self.history, self.clocks, self.messages = SqlHistory(db), SqlClocks(db), SqlMessages(db)
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

    def emit(self, envelope: Envelope) -> None:
        self._staged.append(envelope)

    async def commit(self) -> None:
        assert self._conn is not None
        events = [event for envelope in self._staged for event in encode_envelope(envelope)]
        await self._db.flush()
        await add_to_outbox(self._conn, tables.outbox, events)
        await self._conn.commit()
        self._staged.clear()
        self._on_commit(bool(events), self.instances.wake_times)


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine, on_commit: OnCommit) -> None:
        self._engine, self._on_commit = engine, on_commit

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._on_commit, read_only=read_only)
