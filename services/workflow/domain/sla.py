"""SLA clocks (SOP §5): "assign within 30 min", "resolve within 3 working days", counted in an
organisation's business time, pausable while the desk waits for the requester.

Pure: instants and a `BusinessCalendar` in, new values out. The application layer keeps the
clocks, asks `next_check_at` when to wake, and calls `tick` then to learn what to announce.

How a clock counts:

* At start the target becomes a due time (`SlaTarget.due`) and a **budget**: the working time
  from start to due (`working_time_between`), so "EOD", "P3D" and "PT8H" are all measured the
  same way afterwards. A clock started outside working hours spends nothing until the desk opens.
* `remaining` is the working time left as of `running_since` (the start of the current running
  stretch). Pausing spends the working time since then; resuming sets a new due time that far
  ahead. While paused, `due_at` is the due time as it stood when the clock was paused: shown
  beside "paused" for information, never a deadline; resuming recomputes it.
* The **warning** comes when the working time spent (across pauses) reaches `warning_ratio` of the
  budget, i.e. when `remaining_at` falls to `(1 - warning_ratio) × budget`. The **breach** comes
  at `due_at`, judged by the instant alone: `due_at` is what the requester was told. A clock that
  breaches without having warned (the scheduler was down) warns first, in the same tick.
* Signals never come early: `tick` one microsecond before `next_check_at` says nothing.
* A breach is a fact by the due time, whatever the scheduler did: stopping or cancelling a clock
  that is past due but was not ticked yet gives BREACHED (call `tick` first to get the signal).
  A breached clock stays breached; pausing or resuming it changes nothing, and it counts overdue
  time (`remaining_at` < 0) until it is stopped.
* Transitions on a clock already in the target state, or in a state they do not apply to, return
  the clock unchanged, so a step entered twice does no harm. An instant earlier than the clock's
  last transition counts as that transition's instant (hosts' clocks drift).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from services.kit.errors import DomainError
from services.workflow.domain.calendar import MAX_SCAN_DAYS, BusinessCalendar

DEFAULT_WARNING_RATIO = 0.8

_ZERO = timedelta(0)
# `\d{1,9}` keeps the longest target at 32 characters ("PT999999999H999999999M999999999S").
_DURATION = re.compile(r"P(?:(?P<days>\d{1,9})D|T(?=\d)(?:(?P<h>\d{1,9})H)?(?:(?P<m>\d{1,9})M)?(?:(?P<s>\d{1,9})S)?)")
_LONGEST = timedelta(days=MAX_SCAN_DAYS)
_CLOCK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class SlaError(DomainError):
    """An SLA target or clock property that cannot be used as written; the message names the
    text or property at fault. Deadlines too far away raise the calendar's `CalendarError`."""


# -- targets ---------------------------------------------------------------------------------


class TargetKind(enum.StrEnum):
    WORKING_TIME = "working_time"
    WORKING_DAYS = "working_days"
    END_OF_WORKING_DAY = "end_of_working_day"


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """What a DMN table or diagram says a clock allows: `text` as written (trimmed, upper case)."""

    text: str
    kind: TargetKind
    working_time: timedelta = _ZERO
    working_days: int = 0

    def due(self, start: datetime, calendar: BusinessCalendar) -> datetime:
        """The due time of a clock started at `start`."""
        if self.kind is TargetKind.WORKING_DAYS:
            return calendar.add_working_days(start, self.working_days)
        if self.kind is TargetKind.END_OF_WORKING_DAY:
            return calendar.end_of_working_day(start)
        return calendar.add_working_time(start, self.working_time)


def parse_target(text: object) -> SlaTarget:
    """Parse `"PT15M"` / `"PT2H"` (working time), `"P3D"` (working days) or `"EOD"` (end of the
    working day). `text` is a process variable, so anything may arrive; only text parses.
    Whitespace around it and letter case are ignored."""
    if not isinstance(text, str):
        raise _bad_target(text)
    normalised = text.strip().upper()
    if normalised == "EOD":
        return SlaTarget(normalised, TargetKind.END_OF_WORKING_DAY)
    match = _DURATION.fullmatch(normalised)
    if match is None:
        raise _bad_target(text, _hint(normalised))
    if match["days"] is not None:
        days = int(match["days"])
        if days == 0:
            raise _bad_target(text)
        if days > MAX_SCAN_DAYS:
            raise _bad_target(text, f"longer than {MAX_SCAN_DAYS // 366} years")
        return SlaTarget(normalised, TargetKind.WORKING_DAYS, working_days=days)
    seconds = sum(int(match[unit] or 0) * factor for unit, factor in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds == 0:
        raise _bad_target(text)
    if seconds > _LONGEST.total_seconds():  # before building a timedelta that might overflow
        raise _bad_target(text, f"longer than {MAX_SCAN_DAYS // 366} years")
    return SlaTarget(normalised, TargetKind.WORKING_TIME, working_time=timedelta(seconds=seconds))


def _bad_target(text: object, hint: str = "") -> SlaError:
    message = f'sla target {text!r}: must be a positive ISO 8601 duration, "P<n>D" working days or "EOD"'
    return SlaError(f"{message} ({hint})" if hint else message)


def _hint(text: str) -> str:
    """Why a text that looks like an ISO 8601 duration is still refused."""
    if re.search(r"\d[.,]\d", text):
        return 'fractions are not supported: write "PT90M" for an hour and a half'
    if re.fullmatch(r"P(\d+[YMW])+(T.*)?", text):
        return 'years, months and weeks are not supported: write working days, e.g. "P5D"'
    if re.fullmatch(r"P\d+DT.+", text):
        return 'working days and hours cannot be combined: write "P1D" or "PT12H"'
    return ""


# -- clocks ----------------------------------------------------------------------------------


class ClockState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


class ClockSignal(enum.StrEnum):
    """What a tick has to announce; the values are the event types emitted."""

    WARNING = "sla.warning"
    BREACHED = "sla.breached"


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One SLA clock of one ticket. Immutable: every transition returns a new clock.

    `calendar` is the calendar's name and `target` the target text as parsed; instants are UTC.
    `running_since` is None while paused (and after a stop while paused); after a breach or a
    stop while running it stays, so the overdue time can be measured up to `stopped_at`.
    """

    name: str
    calendar: str
    target: str
    started_at: datetime
    due_at: datetime
    state: ClockState
    budget: timedelta
    remaining: timedelta
    running_since: datetime | None
    paused_at: datetime | None = None
    stopped_at: datetime | None = None
    warned: bool = False

    def __post_init__(self) -> None:
        # Clocks are rebuilt from storage: refuse a combination no transition produces.
        running, paused, stopped = self.running_since is not None, self.paused_at is not None, self.stopped_at
        if (
            (self.state is ClockState.RUNNING and (not running or stopped is not None))
            or (self.state is ClockState.PAUSED and (running or not paused or stopped is not None))
            or (self.state in (ClockState.MET, ClockState.CANCELLED) and stopped is None)
        ):
            raise ValueError(f"sla clock {self.name!r}: inconsistent {self.state} clock {self!r}")

    # -- transitions -----------------------------------------------------------------------

    def pause(self, now: datetime, calendar: BusinessCalendar) -> SlaClock:
        """RUNNING → PAUSED, spending the working time since `running_since`. A clock already
        past due is not paused: it has breached, and the next `tick` says so."""
        at = self._at(now)
        if self.state is not ClockState.RUNNING or at >= self.due_at:
            return self
        return replace(
            self,
            state=ClockState.PAUSED,
            remaining=self._left_at(at, calendar),
            running_since=None,
            paused_at=at,
        )

    def resume(self, now: datetime, calendar: BusinessCalendar) -> SlaClock:
        """PAUSED → RUNNING, due once the remaining working time has passed from `now`."""
        if self.state is not ClockState.PAUSED:
            return self
        at = self._at(now)
        return replace(
            self,
            state=ClockState.RUNNING,
            due_at=calendar.add_working_time(at, self.remaining),
            running_since=at,
            paused_at=None,
        )

    def stop(self, now: datetime) -> SlaClock:
        """The work the clock measured is done: MET if in time, else BREACHED (a clock breached
        earlier stays BREACHED and records when it was resolved). A paused clock is MET."""
        return self._end(now, ClockState.MET)

    def cancel(self, now: datetime) -> SlaClock:
        """The clock no longer applies (ticket cancelled, process ended). A breach stays one."""
        return self._end(now, ClockState.CANCELLED)

    def _end(self, now: datetime, state: ClockState) -> SlaClock:
        at = self._at(now)
        if self.stopped_at is not None or self.state in (ClockState.MET, ClockState.CANCELLED):
            return self
        if self.state is ClockState.BREACHED or (self.state is ClockState.RUNNING and at >= self.due_at):
            state = ClockState.BREACHED
        return replace(self, state=state, stopped_at=at)

    def tick(
        self, now: datetime, calendar: BusinessCalendar, warning_ratio: float = DEFAULT_WARNING_RATIO
    ) -> tuple[SlaClock, list[ClockSignal]]:
        """What has happened by `now`: WARNING once the spent working time reaches
        `warning_ratio` of the budget, BREACHED once `now` reaches `due_at`; each at most once in
        the clock's life, both in one tick (warning first) after a long downtime. Only a RUNNING
        clock says anything."""
        threshold = self._warning_threshold(warning_ratio)
        if self.state is not ClockState.RUNNING:
            return self, []
        at = self._at(now)
        breached = at >= self.due_at
        signals: list[ClockSignal] = []
        if not self.warned and (breached or self._left_at(at, calendar) <= threshold):
            signals.append(ClockSignal.WARNING)
        if breached:
            signals.append(ClockSignal.BREACHED)
        if not signals:
            return self, []
        state = ClockState.BREACHED if breached else self.state
        return replace(self, state=state, warned=True), signals

    # -- reading ---------------------------------------------------------------------------

    def next_check_at(
        self, calendar: BusinessCalendar, warning_ratio: float = DEFAULT_WARNING_RATIO
    ) -> datetime | None:
        """When `tick` next has something to say: the warning instant until it has warned, then
        `due_at`. None unless RUNNING (a paused clock never warns or breaches)."""
        threshold = self._warning_threshold(warning_ratio)
        if self.state is not ClockState.RUNNING or self.running_since is None:
            return None
        if self.warned:
            return self.due_at
        until_warning = self.remaining - threshold
        if until_warning <= _ZERO:  # resumed with less left than the threshold: warn at once
            return self.running_since
        return min(calendar.add_working_time(self.running_since, until_warning), self.due_at)

    def remaining_at(self, now: datetime, calendar: BusinessCalendar) -> timedelta:
        """Working time left at `now`, for display: frozen while paused and once stopped,
        negative when overdue (how much working time past due)."""
        if self.running_since is None:
            return self.remaining
        at = self._at(now)
        return self._left_at(at if self.stopped_at is None else min(at, self.stopped_at), calendar)

    # -- helpers ---------------------------------------------------------------------------

    def _at(self, now: datetime) -> datetime:
        """`now` in UTC, not before the clock's last transition."""
        at = _utc(now)
        last = self.running_since or self.paused_at or self.started_at
        return max(at, last)

    def _left_at(self, at: datetime, calendar: BusinessCalendar) -> timedelta:
        assert self.running_since is not None  # only called on a clock that has a running stretch
        return self.remaining - calendar.working_time_between(self.running_since, max(at, self.running_since))

    def _warning_threshold(self, warning_ratio: float) -> timedelta:
        """The working time left when the warning is due."""
        if not 0 < warning_ratio <= 1:
            raise ValueError(f"warning_ratio must be in (0, 1], got {warning_ratio}")
        return self.budget - self.budget * warning_ratio


def start_clock(name: str, target_text: str, calendar: BusinessCalendar, now: datetime) -> SlaClock:
    """Start clock `name` at `now` with the target `target_text` in `calendar`."""
    if not isinstance(name, str) or not _CLOCK_NAME.fullmatch(name):
        raise SlaError(
            f"sla clock name {name!r}: must be a letter followed by up to 63 letters, digits, '_' or '-'"
            " (it names the message sla.breached.<clock>)"
        )
    target = parse_target(target_text)
    at = _utc(now)
    due = target.due(at, calendar)
    budget = calendar.working_time_between(at, due)
    return SlaClock(
        name=name,
        calendar=calendar.name,
        target=target.text,
        started_at=at,
        due_at=due,
        state=ClockState.RUNNING,
        budget=budget,
        remaining=budget,
        running_since=at,
    )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(UTC)


# -- diagram properties ----------------------------------------------------------------------


class ClockAction(enum.StrEnum):
    """In the order an element's commands apply: ends before beginnings, so one element can
    stop a clock and start it again (`sla.stop = tier2`, `sla.start = tier2:tier2_within`)."""

    STOP = "stop"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    START = "start"


@dataclass(frozen=True, slots=True)
class ClockCommand:
    """One thing an element does to a clock when entered; `target_variable` (START only) names
    the process variable holding the target text."""

    action: ClockAction
    clock: str
    target_variable: str = ""


_PROPERTIES = {f"sla.{action}": action for action in ClockAction}


def parse_clock_properties(properties: Mapping[str, str]) -> list[ClockCommand]:
    """The clock commands in an element's `camunda:property` entries (bpmn/README.md, "SLA
    clocks"), in `ClockAction` order. Properties not starting with `sla.` are not ours.

    A clock may be in at most one of sla.stop / sla.cancel / sla.pause / sla.resume, and may be
    started by an element that also stops or cancels it (a restart), not one that pauses it."""
    for key in properties:
        if key.startswith("sla.") and key not in _PROPERTIES:
            raise SlaError(f"{key}: unknown SLA property (expected one of: {', '.join(_PROPERTIES)})")
    commands: list[ClockCommand] = []
    handled: dict[str, str] = {}  # clock -> the stop/cancel/pause/resume property naming it
    started: set[str] = set()
    for key, action in _PROPERTIES.items():
        if key not in properties:
            continue
        value = properties[key]
        for entry in _entries(key, value):
            if action is ClockAction.START:
                clock, variable = _start_entry(key, value, entry)
                if clock in started:
                    raise SlaError(f"{key} = {value!r}: clock {clock!r} is started twice")
                if handled.get(clock) in ("sla.pause", "sla.resume"):
                    raise SlaError(f"{key} = {value!r}: clock {clock!r} is also in {handled[clock]}")
                started.add(clock)
                commands.append(ClockCommand(action, clock, variable))
                continue
            _check_clock(key, value, entry)
            if entry in handled:
                raise SlaError(f"{key} = {value!r}: clock {entry!r} is also in {handled[entry]}")
            handled[entry] = key
            commands.append(ClockCommand(action, entry))
    return commands


def _entries(key: str, value: str) -> list[str]:
    entries = [entry.strip() for entry in value.split(",")]
    if any(not entry for entry in entries):
        raise SlaError(f"{key} = {value!r}: expected comma-separated entries, found an empty one")
    duplicates = sorted({entry for entry in entries if entries.count(entry) > 1})
    if duplicates:
        raise SlaError(f"{key} = {value!r}: {duplicates[0]!r} is listed twice")
    return entries


def _start_entry(key: str, value: str, entry: str) -> tuple[str, str]:
    clock, colon, variable = (part.strip() for part in entry.partition(":"))
    if not colon:
        raise SlaError(f'{key} = {value!r}: {entry!r} is not clock:variable, e.g. "assign:assign_within"')
    _check_clock(key, value, clock)
    # The variable is read in the expression sandbox, which refuses names starting with "_".
    if not variable.isidentifier() or variable.startswith("_"):
        raise SlaError(
            f"{key} = {value!r}: {variable!r} is not a process variable name (letters, digits and '_', "
            "not starting with a digit or '_')"
        )
    return clock, variable


def _check_clock(key: str, value: str, clock: str) -> None:
    if not _CLOCK_NAME.fullmatch(clock):
        raise SlaError(
            f"{key} = {value!r}: {clock!r} is not a clock name (a letter, then up to 63 letters, digits, '_' or '-')"
        )
