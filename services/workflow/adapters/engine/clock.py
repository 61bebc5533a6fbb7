"""The time SpiffWorkflow's timers see.

The engine's timer code reads `datetime.now(timezone.utc)` itself. Replacing the `datetime` name in
that one module with a subclass whose `now` asks our clock lets the service (and its tests) decide
what "now" is — the same clock that stamps history and computes SLA due times — instead of the
wall clock alone. Installed once per process; the default clock is the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module

Now = Callable[[], datetime]

_now: Now = lambda: datetime.now(UTC)  # noqa: E731


class _EngineDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        current = _now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


def use_clock(now: Now) -> Now:
    """Make the engine's timers use `now` (a function returning an aware datetime); returns the
    clock used until now, to put back when the service that installed this one stops."""
    global _now
    previous, _now = _now, now
    _timer_module.datetime = _EngineDatetime
    return previous


def engine_now() -> datetime:
    return _now()
