"""A robot's rate limit: at most `max_per_minute` messages in any 60 seconds, the rest held back
until the oldest send of the window is a minute old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.domain.throttle import Allowance, allowance

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_without_a_limit_everything_goes() -> None:
    assert allowance([ago(1)] * 500, 0, NOW, 40) == Allowance(40, None)


def test_a_quiet_robot_takes_its_limit_at_once_and_the_rest_a_minute_later() -> None:
    assert allowance([], 20, NOW, 25) == Allowance(20, NOW + timedelta(minutes=1))
    assert allowance([], 20, NOW, 20) == Allowance(20, None)


def test_sends_of_the_last_minute_count_and_older_ones_do_not() -> None:
    sent = [ago(90), ago(60), ago(50), ago(30), ago(10)]  # the first two are out of the window
    assert allowance(sent, 5, NOW, 4) == Allowance(2, ago(50) + timedelta(minutes=1))
    # Full: the next slot opens when the oldest send of the window leaves it.
    assert allowance(sent, 3, NOW, 1) == Allowance(0, ago(50) + timedelta(minutes=1))


def test_no_sixty_seconds_ever_hold_more_than_the_limit() -> None:
    """Sending whenever allowed, as the claims do, for ten minutes of steady demand."""
    sent: list[datetime] = []
    at = NOW
    while at < NOW + timedelta(minutes=10):
        take = allowance(sent, 7, at, 3)
        sent += [at] * take.now
        at = take.next_at or at + timedelta(seconds=1)
    for first in sent:
        assert sum(first <= other < first + timedelta(minutes=1) for other in sent) <= 7
    assert len(sent) >= 7 * 10, "and the robot gets its full rate"


def test_a_limit_lowered_below_what_was_just_sent_waits_until_enough_have_left() -> None:
    sent = [ago(40), ago(30), ago(20), ago(10)]
    # Under 2 a minute again once three of the four are a minute old.
    assert allowance(sent, 2, NOW, 1) == Allowance(0, ago(20) + timedelta(minutes=1))
