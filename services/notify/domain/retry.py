"""When to try a failed send again (exponential backoff with jitter), and when to give up.

With the defaults a notice is tried at most 6 times: after the 1st failure it waits about 30 s,
then 2 min, 8 min, 32 min and 2 h (the cap); when the 6th attempt fails it is dead, with its last
error, until someone calls RetryNotification (which resets the attempts). Each wait is spread by
±20 % (jitter) so that notices failing together (a mail server down) do not retry in lockstep. A
receiver that says how long to wait (Retry-After, a robot's rate limit) is waited for, up to 2 h.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class Random(Protocol):
    """`random.Random` or anything with `random() -> float` in [0, 1)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(seconds=30)
    factor: float = 4.0
    max_delay: timedelta = timedelta(hours=2)
    #: Attempts in all, the first included; after the last failed one the notice is dead.
    max_attempts: int = 6
    #: Each wait is its nominal value × a factor drawn from [1 − jitter, 1 + jitter].
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.first_delay <= timedelta(0) or self.max_delay < self.first_delay:
            raise ValueError("need 0 < first_delay <= max_delay")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def nominal_delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt, before jitter."""
        if attempts < 1:
            raise ValueError("attempts counts the attempts made, at least 1")
        seconds = self.first_delay.total_seconds() * self.factor ** (attempts - 1)
        return min(timedelta(seconds=seconds), self.max_delay)

    def bounds(self, attempts: int) -> tuple[timedelta, timedelta]:
        """The shortest and longest wait after the `attempts`-th failed attempt."""
        nominal = self.nominal_delay(attempts)
        return nominal * (1 - self.jitter), nominal * (1 + self.jitter)

    def schedule(self) -> list[timedelta]:
        """The nominal waits between the attempts, e.g. [30 s, 2 min, 8 min, 32 min, 2 h]."""
        return [self.nominal_delay(n) for n in range(1, self.max_attempts)]


DEFAULT_POLICY = RetryPolicy()


def next_attempt(
    attempts: int,
    now: datetime,
    rng: Random,
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    at_least: timedelta | None = None,
) -> datetime | None:
    """When to try again after `attempts` failed attempts (the one that just failed included);
    None when that was the last one: the notice is dead.

    `at_least`: the receiver asked for this wait (HTTP Retry-After, a robot's rate-limit window).
    It is honoured when longer than the backoff, up to the policy's longest wait (a receiver
    cannot park a notice for days: after `max_delay` it is simply asked again), and spread upwards
    only, by the same jitter, so that notices refused together do not all return at one instant."""
    if attempts >= policy.max_attempts:
        return None
    low, high = policy.bounds(attempts)
    spread = rng.random()
    wait = low + (high - low) * spread
    if at_least is not None:
        wait = max(wait, min(at_least, policy.max_delay) * (1 + policy.jitter * spread))
    return now + wait
