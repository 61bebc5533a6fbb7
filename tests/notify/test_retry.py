"""When a failed notice is tried again: about 30 s, 2 min, 8 min, 32 min and 2 h after each
failure, spread by ±20 %, and dead after the sixth attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.domain.retry import DEFAULT_POLICY, RetryPolicy, next_attempt

NOW = datetime(2023, 10, 27, 2, 0, tzinfo=UTC)
S = timedelta(seconds=1)


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_the_default_schedule() -> None:
    assert DEFAULT_POLICY.schedule() == [30 * S, 120 * S, 480 * S, 1920 * S, 7200 * S]


@pytest.mark.parametrize(("attempts", "nominal"), [(1, 30), (2, 120), (3, 480), (4, 1920), (5, 7200)])
def test_each_wait_stays_within_its_jitter_bounds(attempts: int, nominal: int) -> None:
    earliest = next_attempt(attempts, NOW, Fixed(0.0))
    middle = next_attempt(attempts, NOW, Fixed(0.5))
    latest = next_attempt(attempts, NOW, Fixed(0.999999))
    assert earliest == NOW + nominal * 0.8 * S
    assert middle == NOW + nominal * S
    assert latest is not None
    assert NOW + nominal * 1.2 * S - S < latest < NOW + nominal * 1.2 * S


def test_the_sixth_failure_is_the_last() -> None:
    assert next_attempt(5, NOW, Fixed(0.5)) is not None
    assert next_attempt(6, NOW, Fixed(0.5)) is None
    assert next_attempt(60, NOW, Fixed(0.5)) is None


def test_a_policy_is_configurable_and_capped() -> None:
    policy = RetryPolicy(first_delay=10 * S, factor=2, max_delay=30 * S, max_attempts=5, jitter=0)
    assert policy.schedule() == [10 * S, 20 * S, 30 * S, 30 * S]
    assert next_attempt(4, NOW, Fixed(0.9), policy) == NOW + 30 * S
    assert next_attempt(5, NOW, Fixed(0.9), policy) is None
    assert RetryPolicy(max_attempts=1).schedule() == []


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"first_delay": timedelta(0)},
        {"first_delay": 3 * S, "max_delay": 2 * S},
        {"factor": 0.5},
        {"jitter": 1.0},
    ],
)
def test_a_nonsensical_policy_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message is specific; the refusal is the point
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DEFAULT_POLICY.nominal_delay(0)


def test_a_wait_the_receiver_asks_for_is_honoured_when_longer_than_the_backoff() -> None:
    # Retry-After: 600 after the first failure (backoff 24–36 s): not before 10 min, spread upwards.
    assert next_attempt(1, NOW, Fixed(0.0), at_least=600 * S) == NOW + 600 * S
    assert next_attempt(1, NOW, Fixed(0.5), at_least=600 * S) == NOW + 660 * S
    # Shorter than the backoff: the backoff.
    assert next_attempt(3, NOW, Fixed(0.5), at_least=10 * S) == NOW + 480 * S
    # At most the policy's longest wait (2 h, jittered as any wait): a receiver cannot park a notice.
    assert next_attempt(1, NOW, Fixed(0.0), at_least=timedelta(days=3)) == NOW + 7200 * S
    # The last attempt stays the last.
    assert next_attempt(6, NOW, Fixed(0.5), at_least=600 * S) is None
