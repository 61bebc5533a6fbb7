"""ListNotifications and RetryNotification read a notification and its attempt log in two
statements: an attempt recorded between them must not show in the log while the notification
still reads as never tried (PostgreSQL reads both as of one moment)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kit.db import create_engine
from services.kit.migrate import upgrade
from services.notify.adapters import sql_store
from services.notify.adapters.sql_store import SqlDeliveryStore, SqlRecordStore
from services.notify.application.ports import DeliveryAttempt, Notification, NotificationQuery
from services.notify.bootstrap import MIGRATIONS
from services.notify.domain.delivery import Outcome, Status
from tests.notify.test_robot_rate_limit import NOW, notice


@pytest.fixture
async def engine(fresh_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_database_url)
    await upgrade(engine, MIGRATIONS, "notify")
    yield engine
    await engine.dispose()


async def test_a_notification_and_its_attempts_are_read_as_of_one_moment(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = notice(1, "ops")
    async with engine.begin() as conn:
        await SqlRecordStore(conn).add_notifications([new])
    store = SqlDeliveryStore(engine)
    read_attempts = sql_store._with_attempts
    sent = Outcome(Status.SENT, 1, None, "", NOW)

    async def sent_meanwhile(conn: AsyncConnection, rows: Sequence[Any]) -> list[Notification]:
        # The sender records its attempt (its own transaction) between the reader's two statements.
        await store.record_outcome(new.notification_id, sent, DeliveryAttempt(NOW, True, ""))
        return await read_attempts(conn, rows)

    monkeypatch.setattr(sql_store, "_with_attempts", sent_meanwhile)
    got = await store.get(new.notification_id)
    assert got is not None
    assert (got.status, got.attempts, got.attempt_log) == (Status.PENDING, 0, ())

    sent = Outcome(Status.SENT, 2, None, "", NOW + timedelta(seconds=1))
    [listed] = await store.list(NotificationQuery(organization="acme", ticket_number=new.ticket_number))
    assert (listed.status, listed.attempts, len(listed.attempt_log)) == (Status.SENT, 1, 1)

    monkeypatch.setattr(sql_store, "_with_attempts", read_attempts)
    after = await store.get(new.notification_id)
    assert after is not None
    assert (after.status, after.attempts, len(after.attempt_log)) == (Status.SENT, 2, 2)
