"""SQL implementations of notify's stores (PostgreSQL and SQLite).

`SqlRecordStore` works on the event consumer's connection (its transaction); `SqlDeliveryStore`
opens a short transaction per call. Every time is stored in UTC (SQLite hands them back naive).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.kit.db import (
    insert_ignoring_duplicates,
    is_postgres,
    read_as_of_one_moment,
    stored_utc,
    stored_utc_required,
)
from services.notify.adapters import tables as t
from services.notify.application.ports import (
    DeliveryAttempt,
    MaxPerMinute,
    NewNotification,
    Notification,
    NotificationQuery,
    Outgoing,
)
from services.notify.domain.delivery import WAITING, Outcome, Status
from services.notify.domain.rules import CHANNELS, Channel
from services.notify.domain.throttle import WINDOW, allowance
from services.notify.domain.ticket_context import TicketContext

n = t.notifications


def _channel(value: str) -> Channel:
    for channel in CHANNELS:
        if channel == value:
            return channel
    raise ValueError(f"unknown channel {value!r} in {n.name}")


class SqlRecordStore:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def load_context(self, organization: str, ticket_number: str) -> TicketContext | None:
        query = select(t.tickets.c.context).where(
            t.tickets.c.organization == organization, t.tickets.c.ticket_number == ticket_number
        )
        if is_postgres(self._conn):
            # Two replicas consuming events of one ticket must not overwrite each other's changes.
            query = query.with_for_update()
        data = await self._conn.scalar(query)
        return TicketContext.from_dict(data) if data is not None else None

    async def save_context(self, context: TicketContext, now: datetime, *, new: bool) -> None:
        values = {"context": context.to_dict(), "updated_at": stored_utc_required(now)}
        if new:
            # A plain insert: if another replica created the row meanwhile, this transaction fails
            # and the event is redelivered, to be applied on top of the other one's.
            await self._conn.execute(
                t.tickets.insert().values(organization=context.org, ticket_number=context.number, **values)
            )
        else:
            await self._conn.execute(
                update(t.tickets)
                .where(t.tickets.c.organization == context.org, t.tickets.c.ticket_number == context.number)
                .values(**values)
            )

    async def add_notifications(self, notifications: Sequence[NewNotification]) -> list[NewNotification]:
        added = []
        for item in notifications:
            row = {
                "notification_id": item.notification_id,
                "notice_key": item.notice_key,
                "organization": item.organization,
                "ticket_number": item.ticket_number,
                "event_id": item.event_id,
                "event_type": item.event_type,
                "recipient": item.recipient,
                "channel": item.channel,
                "template": item.template,
                "locale": item.locale,
                "subject": item.subject,
                "body": item.body,
                "payload": item.payload,
                "webhook": item.webhook,
                "status": item.status.value,
                "attempts": 0,
                "next_attempt_at": stored_utc(item.next_attempt_at),
                "last_error": item.last_error,
                "created_at": stored_utc_required(item.created_at),
                "sent_at": stored_utc(item.sent_at),
            }
            if await insert_ignoring_duplicates(self._conn, n, row):
                added.append(item)
        return added


async def _hold_beyond_rate_limits(
    conn: AsyncConnection, claimed: Sequence[tuple[str, str, str]], now: datetime, max_per_minute: MaxPerMinute
) -> set[str]:
    """Of the robots' notices claimed, (notification id, organisation, webhook) oldest due first,
    those to hold back: they stay waiting, unclaimed and without using an attempt, until their
    robot's next slot opens (domain/throttle.py). A robot's window is counted and filled under a
    lock of its own, so replicas claiming together never fill it twice; every claimer locks robots
    in one order (sorted), so two never deadlock."""
    by_robot: dict[tuple[str, str], list[str]] = defaultdict(list)
    for notification_id, org, hook in claimed:
        by_robot[(org, hook)].append(notification_id)
    held: set[str] = set()
    sends = t.robot_sends
    for org, hook in sorted(by_robot):
        most = max_per_minute(org, hook)
        if most <= 0:
            continue
        waiting = by_robot[(org, hook)]
        if is_postgres(conn):
            key = func.hashtextextended(f"supportflow.notify.robot:{org}/{hook}", 0)
            await conn.execute(select(func.pg_advisory_xact_lock(key)))
        robot = and_(sends.c.organization == org, sends.c.webhook == hook)
        await conn.execute(delete(sends).where(robot, sends.c.at <= stored_utc_required(now - WINDOW)))
        sent = (await conn.execute(select(sends.c.at).where(robot).order_by(sends.c.at))).scalars()
        allowed = allowance([stored_utc_required(at) for at in sent], most, now, len(waiting))
        if allowed.now:
            at = stored_utc_required(now)
            await conn.execute(sends.insert(), [{"organization": org, "webhook": hook, "at": at}] * allowed.now)
        if allowed.next_at is not None:
            later = waiting[allowed.now :]
            await conn.execute(
                update(n)
                .where(n.c.notification_id.in_(later))
                .values(next_attempt_at=stored_utc_required(allowed.next_at))
            )
            held.update(later)
    return held


class SqlDeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim_due(
        self,
        channel: Channel,
        now: datetime,
        lease_until: datetime,
        limit: int,
        max_per_minute: MaxPerMinute | None = None,
    ) -> list[Outgoing]:
        query = (
            select(
                n.c.notification_id,
                n.c.notice_key,
                n.c.organization,
                n.c.ticket_number,
                n.c.event_type,
                n.c.channel,
                n.c.recipient,
                n.c.webhook,
                n.c.payload,
                n.c.attempts,
                n.c.last_error,
            )
            .where(
                n.c.channel == channel,
                n.c.status.in_([s.value for s in WAITING]),
                n.c.next_attempt_at <= stored_utc_required(now),
            )
            .order_by(n.c.next_attempt_at)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            if is_postgres(conn):
                # Another worker's claim skips these rows instead of waiting for them (SQLite has one writer).
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            if rows and max_per_minute is not None:
                waiting = [(r.notification_id, r.organization, r.webhook) for r in rows if r.webhook]
                held = await _hold_beyond_rate_limits(conn, waiting, now, max_per_minute)
                rows = [r for r in rows if r.notification_id not in held]
            if rows:
                await conn.execute(
                    update(n)
                    .where(n.c.notification_id.in_([r.notification_id for r in rows]))
                    .values(next_attempt_at=stored_utc_required(lease_until))
                )
        return [
            Outgoing(
                notification_id=r.notification_id,
                notice_key=r.notice_key,
                organization=r.organization,
                ticket_number=r.ticket_number,
                event_type=r.event_type,
                channel=_channel(r.channel),
                recipient=r.recipient,
                webhook=r.webhook,
                payload=bytes(r.payload),
                attempts=r.attempts,
                last_error=r.last_error,
            )
            for r in rows
        ]

    async def record_outcome(self, notification_id: str, outcome: Outcome, attempt: DeliveryAttempt) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(n)
                .where(n.c.notification_id == notification_id)
                .values(
                    status=outcome.status.value,
                    attempts=outcome.attempts,
                    next_attempt_at=stored_utc(outcome.next_attempt_at),
                    last_error=outcome.last_error,
                    sent_at=stored_utc(outcome.sent_at),
                )
            )
            await conn.execute(
                t.attempts.insert().values(
                    notification_id=notification_id,
                    at=stored_utc_required(attempt.at),
                    succeeded=attempt.succeeded,
                    error=attempt.error,
                )
            )

    async def get(self, notification_id: str) -> Notification | None:
        async with self._engine.connect() as conn:
            await read_as_of_one_moment(conn)  # the notification and its attempt log agree
            row = (await conn.execute(_columns().where(n.c.notification_id == notification_id))).first()
            if row is None:
                return None
            return (await _with_attempts(conn, [row]))[0]

    async def requeue(self, notification_id: str, now: datetime, from_statuses: Sequence[Status]) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(n)
                .where(n.c.notification_id == notification_id, n.c.status.in_([s.value for s in from_statuses]))
                .values(status=Status.PENDING.value, attempts=0, next_attempt_at=stored_utc_required(now))
            )
        return bool(result.rowcount)

    async def list(self, query: NotificationQuery) -> list[Notification]:
        conditions: list[Any] = [n.c.organization == query.organization]
        if query.ticket_number:
            conditions.append(n.c.ticket_number == query.ticket_number)
        if query.recipient:
            conditions.append(n.c.recipient == query.recipient)
        if query.statuses:
            conditions.append(n.c.status.in_([s.value for s in query.statuses]))
        if query.channel is not None:
            conditions.append(n.c.channel == query.channel)
        if query.after is not None:
            created, last_id = stored_utc_required(query.after[0]), query.after[1]
            conditions.append(
                or_(n.c.created_at < created, and_(n.c.created_at == created, n.c.notification_id < last_id))
            )
        statement = (
            _columns().where(*conditions).order_by(n.c.created_at.desc(), n.c.notification_id.desc()).limit(query.limit)
        )
        async with self._engine.connect() as conn:
            await read_as_of_one_moment(conn)  # the notifications and their attempt logs agree
            rows = (await conn.execute(statement)).all()
            return await _with_attempts(conn, rows)


def _columns() -> Any:
    has_payload = (func.length(n.c.payload) > 0).label("has_payload")
    return select(*(c for c in n.c if c.name not in ("payload", "notice_key", "webhook")), has_payload)


async def _with_attempts(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[Notification]:
    ids = [r.notification_id for r in rows]
    log: dict[str, list[DeliveryAttempt]] = {i: [] for i in ids}
    if ids:
        found = await conn.execute(
            select(t.attempts.c.notification_id, t.attempts.c.at, t.attempts.c.succeeded, t.attempts.c.error)
            .where(t.attempts.c.notification_id.in_(ids))
            .order_by(t.attempts.c.id)
        )
        for a in found:
            log[a.notification_id].append(DeliveryAttempt(stored_utc_required(a.at), bool(a.succeeded), a.error))
    return [_notification(r, tuple(log[r.notification_id])) for r in rows]


def _notification(row: Row[Any], attempts: tuple[DeliveryAttempt, ...]) -> Notification:
    m = row._mapping
    return Notification(
        notification_id=m["notification_id"],
        organization=m["organization"],
        ticket_number=m["ticket_number"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        recipient=m["recipient"],
        channel=_channel(m["channel"]),
        template=m["template"],
        locale=m["locale"],
        subject=m["subject"],
        body=m["body"],
        status=Status(m["status"]),
        attempts=m["attempts"],
        next_attempt_at=stored_utc(m["next_attempt_at"]),
        last_error=m["last_error"],
        created_at=stored_utc_required(m["created_at"]),
        sent_at=stored_utc(m["sent_at"]),
        has_payload=bool(m["has_payload"]),
        attempt_log=attempts,
    )
