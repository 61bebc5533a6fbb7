"""Sending what is due, one channel at a time.

`deliver_due` claims a batch of due notifications of one channel in a short transaction (pushing
their next attempt out by a lease, so another worker does not take them too), sends them outside
any transaction, concurrently, and records each outcome as soon as its send ends: sent; or failed,
to be retried after the backoff of `retry.next_attempt` (longer when the receiver asked for a
wait); or, after the last attempt or a refusal for good (`DeliveryRefused`), dead with the error.
A chat robot's notices beyond its rate limit are not claimed: they wait, without using an
attempt, until the robot takes more (domain/throttle.py).

Delivery is at least once. A process that dies mid-send, or cannot record the outcome because the
database is gone, leaves the notification claimed; it is taken again when the lease ends. If the
receiver had already accepted it — for SMTP, once the server has the message's final "." it may
queue it before its "250" reaches us (RFC 1047) — it receives the message twice. The window is one
send per worker in flight at the crash; the copy carries the same Message-ID (mail clients and
archives de-duplicate by it) or Idempotency-Key (webhook receivers should). No protocol closes it:
SMTP has no way to ask a server whether it already has a message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from services.notify.application.ports import (
    Clock,
    DeliveryAttempt,
    DeliveryFailed,
    DeliveryRefused,
    DeliveryStore,
    MaxPerMinute,
    Outgoing,
    Sender,
)
from services.notify.domain.delivery import Outcome, after_attempt
from services.notify.domain.retry import DEFAULT_POLICY, Random, RetryPolicy
from services.notify.domain.rules import Channel

log = logging.getLogger(__name__)

#: Longest error text kept per notification and attempt.
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DeliveryDeps:
    store: DeliveryStore
    clock: Clock
    rng: Random
    policy: RetryPolicy = DEFAULT_POLICY
    #: How long a claimed notification stays invisible to other workers while it is being sent.
    lease: timedelta = timedelta(minutes=2)
    batch: int = 20
    #: Each robot's rate limit; notices beyond it wait unclaimed (domain/throttle.py). None: no limits.
    max_per_minute: MaxPerMinute | None = None


async def deliver_due(channel: Channel, sender: Sender, deps: DeliveryDeps) -> list[tuple[Outgoing, Outcome]]:
    """Send the due notifications of `channel` (at most one batch); returns each with its outcome."""
    now = deps.clock.now()
    claimed = await deps.store.claim_due(channel, now, now + deps.lease, deps.batch, deps.max_per_minute)
    if not claimed:
        return []
    return list(await asyncio.gather(*(_deliver(item, sender, deps) for item in claimed)))


async def _deliver(item: Outgoing, sender: Sender, deps: DeliveryDeps) -> tuple[Outgoing, Outcome]:
    error, failure = await _attempt(item, sender)
    at = deps.clock.now()
    outcome = after_attempt(
        item.attempts,
        at,
        error,
        deps.rng,
        deps.policy,
        previous_error=item.last_error,
        permanent=isinstance(failure, DeliveryRefused),
        retry_after=failure.retry_after if failure is not None else None,
    )
    await deps.store.record_outcome(item.notification_id, outcome, DeliveryAttempt(at, error is None, error or ""))
    if error is not None:
        log.warning(
            "%s to %s (%s %s) failed, attempt %d: %s; %s",
            item.channel,
            item.recipient,
            item.event_type,
            item.ticket_number,
            outcome.attempts,
            error,
            f"next at {outcome.next_attempt_at:%Y-%m-%d %H:%M:%S}" if outcome.next_attempt_at else "now dead",
        )
    return item, outcome


async def _attempt(item: Outgoing, sender: Sender) -> tuple[str | None, DeliveryFailed | None]:
    """(why it failed or None, the sender's DeliveryFailed when it raised one: permanent or not,
    and how long the receiver asked us to wait)."""
    try:
        await sender.send(item)
    except DeliveryFailed as exc:
        return _clip(str(exc) or "failed"), exc
    except Exception as exc:  # a sender bug or an unexpected library error: still this notice's failure
        log.exception("%s sender failed on %s", item.channel, item.notification_id)
        return _clip(f"{type(exc).__name__}: {exc}"), None
    return None, None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
