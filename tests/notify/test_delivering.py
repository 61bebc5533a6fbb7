"""Sending what is due (the sender loops' use case), against an in-memory store and senders that
succeed, fail or hang: each outcome is recorded as soon as its send ends, failures wait the
policy's backoff, the last failure is final, and only due notifications of the loop's channel go."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.kit.auth import Principal
from services.notify.application.delivering import DeliveryDeps, deliver_due
from services.notify.application.inbox import retry_notification
from services.notify.application.ports import (
    DeliveryAttempt,
    DeliveryFailed,
    DeliveryRefused,
    MaxPerMinute,
    Notification,
    NotificationQuery,
    Outgoing,
)
from services.notify.domain.delivery import WAITING, Outcome, Status, after_attempt
from services.notify.domain.retry import RetryPolicy
from services.notify.domain.rules import Channel

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3)


class Clock:
    def __init__(self) -> None:
        self.current = NOW

    def now(self) -> datetime:
        return self.current


class MemoryDeliveries:
    def __init__(self) -> None:
        self.rows: dict[str, Notification] = {}
        self.payloads: dict[str, bytes] = {}
        self.recorded: list[str] = []

    def add(self, notification_id: str, channel: Channel = "email", due: datetime = NOW) -> None:
        self.rows[notification_id] = Notification(
            notification_id=notification_id,
            organization="acme",
            ticket_number="TS20260302000001",
            event_id="e1",
            event_type="ticket.classified",
            recipient=f"{notification_id}@acme.example",
            channel=channel,
            template="receipt",
            locale="zh-CN",
            subject="s",
            body="b",
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=due,
            last_error="",
            created_at=NOW,
            sent_at=None,
            has_payload=True,
        )

    async def claim_due(
        self,
        channel: Channel,
        now: datetime,
        lease_until: datetime,
        limit: int,
        max_per_minute: MaxPerMinute | None = None,
    ) -> list[Outgoing]:
        assert max_per_minute is None, "robots' rate limits: tests/notify/test_robot_rate_limit.py, on SQL"
        due = sorted(
            (
                r
                for r in self.rows.values()
                if r.channel == channel and r.status in WAITING and r.next_attempt_at and r.next_attempt_at <= now
            ),
            key=lambda r: r.next_attempt_at or now,
        )[:limit]
        for r in due:
            self.rows[r.notification_id] = replace(r, next_attempt_at=lease_until)
        return [
            Outgoing(
                r.notification_id,
                "k",
                r.organization,
                r.ticket_number,
                r.event_type,
                r.channel,
                r.recipient,
                None,
                b"x",
                r.attempts,
                r.last_error,
            )
            for r in due
        ]

    async def record_outcome(self, notification_id: str, outcome: Outcome, attempt: DeliveryAttempt) -> None:
        row = self.rows[notification_id]
        self.rows[notification_id] = replace(
            row,
            status=outcome.status,
            attempts=outcome.attempts,
            next_attempt_at=outcome.next_attempt_at,
            last_error=outcome.last_error,
            sent_at=outcome.sent_at,
            attempt_log=(*row.attempt_log, attempt),
        )
        self.recorded.append(notification_id)

    async def get(self, notification_id: str) -> Notification | None:
        return self.rows.get(notification_id)

    async def requeue(self, notification_id: str, now: datetime, from_statuses: Sequence[Status]) -> bool:
        row = self.rows[notification_id]
        if row.status not in from_statuses:
            return False
        self.rows[notification_id] = replace(row, status=Status.PENDING, attempts=0, next_attempt_at=now)
        return True

    async def list(self, query: NotificationQuery) -> list[Notification]:
        return list(self.rows.values())


class Scripted:
    """Fails the recipients in `failing`; holds those in `held` until released."""

    def __init__(self, failing: set[str] = frozenset(), held: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing, self.held = set(failing), set(held)
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, item: Outgoing) -> None:
        if item.notification_id in self.held:
            await self.release.wait()
        if item.notification_id in self.failing:
            raise DeliveryFailed(f"SMTP server answered 451 for {item.recipient}")
        self.sent.append(item.notification_id)


def deps(store: MemoryDeliveries, clock: Clock, batch: int = 20) -> DeliveryDeps:
    return DeliveryDeps(store=store, clock=clock, rng=random.Random(1), policy=POLICY, batch=batch)


def test_an_attempt_ends_sent_retrying_or_dead() -> None:
    rng = random.Random(3)
    assert after_attempt(0, NOW, None, rng, POLICY) == Outcome(Status.SENT, 1, None, "", NOW)
    retrying = after_attempt(0, NOW, "451 busy", rng, POLICY)
    assert (retrying.status, retrying.attempts, retrying.last_error) == (Status.RETRYING, 1, "451 busy")
    low, high = POLICY.bounds(1)
    assert retrying.next_attempt_at is not None
    assert NOW + low <= retrying.next_attempt_at <= NOW + high
    assert after_attempt(2, NOW, "451 busy", rng, POLICY) == Outcome(Status.DEAD, 3, None, "451 busy", None)


async def test_due_notifications_of_the_channel_are_sent_and_failures_wait_their_backoff() -> None:
    store, clock = MemoryDeliveries(), Clock()
    store.add("ok")
    store.add("bad")
    store.add("later", due=NOW + timedelta(minutes=5))
    store.add("hook", channel="webhook")
    sender = Scripted(failing={"bad"})
    done = await deliver_due("email", sender, deps(store, clock))
    assert sorted(item.notification_id for item, _ in done) == ["bad", "ok"]
    assert sender.sent == ["ok"]
    assert store.rows["ok"].status == Status.SENT
    assert store.rows["ok"].sent_at == NOW
    bad = store.rows["bad"]
    assert (bad.status, bad.attempts, bad.last_error) == (
        Status.RETRYING,
        1,
        "SMTP server answered 451 for bad@acme.example",
    )
    assert bad.attempt_log == (DeliveryAttempt(NOW, False, "SMTP server answered 451 for bad@acme.example"),)
    assert store.rows["hook"].status == Status.PENDING  # another channel's loop sends it
    assert store.rows["later"].status == Status.PENDING

    assert await deliver_due("email", sender, deps(store, clock)) == []  # nothing due yet
    assert bad.next_attempt_at is not None
    clock.current = bad.next_attempt_at
    await deliver_due("email", sender, deps(store, clock))
    assert store.rows["bad"].attempts == 2
    clock.current = store.rows["bad"].next_attempt_at or NOW
    await deliver_due("email", sender, deps(store, clock))
    dead = store.rows["bad"]
    assert (dead.status, dead.attempts, dead.next_attempt_at) == (Status.DEAD, 3, None)
    assert "451" in dead.last_error


async def test_a_refusal_for_good_is_dead_at_the_first_attempt_and_can_still_be_retried() -> None:
    store, clock = MemoryDeliveries(), Clock()
    store.add("gone")
    store.add("busy")

    class Refusing:
        async def send(self, item: Outgoing) -> None:
            if item.notification_id == "gone":
                raise DeliveryRefused("SMTP server refused the recipient: 550 5.1.1 no such user")
            raise DeliveryFailed("SMTP server answered 421 4.3.2 shutting down")

    await deliver_due("email", Refusing(), deps(store, clock))
    gone, busy = store.rows["gone"], store.rows["busy"]
    assert (gone.status, gone.attempts, gone.next_attempt_at) == (Status.DEAD, 1, None)
    assert "550 5.1.1" in gone.last_error
    assert (busy.status, busy.attempts) == (Status.RETRYING, 1)  # 4xx: tried again after its backoff
    agent = Principal("agent-1", "acme", frozenset({"agent"}))
    await retry_notification(store, clock, agent, "gone", wake=lambda channel: None)  # address fixed
    await deliver_due("email", Scripted(), deps(store, clock))
    assert store.rows["gone"].status == Status.SENT


async def test_a_receiver_that_names_a_longer_wait_is_not_asked_again_before_it() -> None:
    store, clock = MemoryDeliveries(), Clock()
    store.add("limited", "webhook")
    store.add("busy", "webhook")

    class RateLimited:
        async def send(self, item: Outgoing) -> None:
            if item.notification_id == "limited":
                raise DeliveryFailed("HTTP 429: slow down (Retry-After 900 s)", retry_after=timedelta(minutes=15))
            raise DeliveryFailed("HTTP 503: busy", retry_after=timedelta(seconds=5))  # shorter than the backoff

    await deliver_due("webhook", RateLimited(), deps(store, clock))
    limited, busy = store.rows["limited"], store.rows["busy"]
    assert (limited.status, limited.attempts) == (Status.RETRYING, 1)
    assert limited.next_attempt_at is not None
    assert NOW + timedelta(minutes=15) <= limited.next_attempt_at <= NOW + timedelta(minutes=18)
    low, high = POLICY.bounds(1)
    assert busy.next_attempt_at is not None
    assert NOW + low <= busy.next_attempt_at <= NOW + high  # the backoff, as without a Retry-After

    clock.current = NOW + high + timedelta(seconds=1)
    sender = Scripted()
    await deliver_due("webhook", sender, deps(store, clock))
    assert sender.sent == ["busy"]
    clock.current = limited.next_attempt_at
    await deliver_due("webhook", sender, deps(store, clock))
    assert sender.sent == ["busy", "limited"]


async def test_a_slow_send_does_not_hold_up_recording_the_others() -> None:
    store, clock = MemoryDeliveries(), Clock()
    for name in ("slow", "a", "b"):
        store.add(name)
    sender = Scripted(held={"slow"})
    round_ = asyncio.create_task(deliver_due("email", sender, deps(store, clock)))
    for _ in range(100):
        if len(store.recorded) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(store.recorded) == ["a", "b"]
    assert store.rows["slow"].status == Status.PENDING
    sender.release.set()
    await round_
    assert store.rows["slow"].status == Status.SENT


async def test_a_sender_bug_counts_as_a_failed_attempt_with_its_reason() -> None:
    store, clock = MemoryDeliveries(), Clock()
    store.add("n1")

    class Broken:
        async def send(self, item: Outgoing) -> None:
            raise KeyError("boom")

    await deliver_due("email", Broken(), deps(store, clock))
    assert store.rows["n1"].status == Status.RETRYING
    assert store.rows["n1"].last_error == "KeyError: 'boom'"


async def test_retrying_resets_the_attempts_and_keeps_the_log() -> None:
    store, clock = MemoryDeliveries(), Clock()
    store.add("n1")
    store.rows["n1"] = replace(store.rows["n1"], status=Status.DEAD, attempts=3, next_attempt_at=None, last_error="x")
    woken: list[str] = []
    agent = Principal("agent-1", "acme", frozenset({"agent"}))
    clock.current = NOW + timedelta(hours=1)
    again = await retry_notification(store, clock, agent, "n1", wake=woken.append)
    assert (again.status, again.attempts, again.next_attempt_at) == (Status.PENDING, 0, clock.current)
    assert woken == ["email"]
    await deliver_due("email", Scripted(), deps(store, clock))
    assert store.rows["n1"].status == Status.SENT
