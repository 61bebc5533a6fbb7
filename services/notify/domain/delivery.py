"""Where a notification stands on its way out, and what one send attempt makes of it.

    in_app ─────────────────────────────────────────────► sent      (stored = delivered)
    email, webhook ──► pending ──► sent
                          │  ▲
                   failed │  │ due again (backoff: retry.next_attempt)
                          ▼  │
                       retrying ──(last attempt failed)──► dead ──(RetryNotification)──► pending
                          ▲                                   ▲
                          └─ any attempt refused for good ────┘   (an SMTP 5xx, a webhook's 4xx: not retried)

A notice that could not even be built (its template failed, its webhook's URL is not configured)
is stored dead at once, with the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.notify.domain.retry import DEFAULT_POLICY, Random, RetryPolicy, next_attempt
from services.notify.domain.rules import Channel


class Status(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"


#: The channels that go over the wire (in-app notices are delivered by being stored).
SENT_BY_SENDERS: Final[tuple[Channel, ...]] = ("email", "webhook")
#: What the senders pick up when due.
WAITING: Final = (Status.PENDING, Status.RETRYING)
#: What RetryNotification may send again.
RETRYABLE: Final = (Status.DEAD, Status.RETRYING)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A notification's delivery fields after an attempt."""

    status: Status
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None


def after_attempt(
    attempts_before: int,
    now: datetime,
    error: str | None,
    rng: Random,
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    previous_error: str = "",
    permanent: bool = False,
    retry_after: timedelta | None = None,
) -> Outcome:
    """The outcome of the attempt that just ended at `now`: sent when `error` is None; else
    retrying after the policy's backoff (or the longer `retry_after` the receiver asked for), or
    dead with `error` when that was the last attempt or the failure was `permanent` (the receiver
    refused the message for good)."""
    attempts = attempts_before + 1
    if error is None:
        return Outcome(Status.SENT, attempts, None, previous_error, now)
    due = None if permanent else next_attempt(attempts, now, rng, policy, at_least=retry_after)
    if due is None:
        return Outcome(Status.DEAD, attempts, None, error, None)
    return Outcome(Status.RETRYING, attempts, due, error, None)
