"""Business calendars: when an organisation's service desk is staffed, and deadline arithmetic
in that working time.

SLA clocks (SOP §5) run in business time: "4 working hours", "3 working days", "same working
day". A calendar says which hours of which days count. It is plain data loaded from the bundle
(`bpmn/calendars/*.toml`, parsed by `calendar_format`); this module only does arithmetic.

Rules every method follows:

* Instants in and out are timezone-aware; naive input raises `ValueError` (a naive time is a
  bug upstream: we cannot guess whose 09:00 it is). Results are in UTC.
* Working hours are wall-clock times in the calendar's own zone, so a Berlin desk opens at
  08:00 local on both sides of a DST change. Durations inside working hours are real elapsed
  time (an hour of work is sixty minutes even on the night the clocks change).
* Periods are half-open, [opens, closes): 18:00 is the first minute *after* a desk that
  closes at 18:00. A deadline that falls exactly on a closing time is reported as that closing
  time, not as the next morning's opening: same moment in business time, and it is what a
  requester expects to read.
* Scanning is bounded (`MAX_SCAN_DAYS`): a deadline more than ten years away is refused
  rather than looping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from services.kit.errors import DomainError

#: How far ahead (in calendar days) any computation may scan before giving up.
MAX_SCAN_DAYS = 3660
MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_DAY = timedelta(days=1)


class CalendarError(DomainError):
    """A calendar that cannot be used as written (malformed file, no working time at all), or a
    deadline further away than `MAX_SCAN_DAYS`. Carries every problem found, each naming the
    key or date it is about, so an admin can fix a file in one pass."""

    def __init__(self, *problems: str) -> None:
        if not problems:
            raise ValueError("CalendarError needs at least one problem")
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True, order=True)
class WorkingPeriod:
    """One staffed stretch of a day, [opens, closes), in minutes after local midnight.

    Minutes rather than `datetime.time` so that a period can end at 24:00 (midnight)."""

    opens: int
    closes: int

    def __post_init__(self) -> None:
        if not 0 <= self.opens < self.closes <= MINUTES_PER_DAY:
            raise CalendarError(f"working period {self} must open before it closes, within 00:00-24:00")

    def __str__(self) -> str:
        return f"{_hhmm(self.opens)}-{_hhmm(self.closes)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """An organisation's working time: weekly hours, public holidays and make-up working days.

    `weekly_hours[0]` is Monday. Holidays are days off whatever their weekday. Make-up working
    days (调休) are days worked although their weekday has no hours (a Sunday worked to bridge a
    holiday); they are worked with `make_up_day_hours`. An `always_open` calendar (24×7, for
    P0) counts every instant and has no hours, holidays or make-up days.
    """

    name: str
    time_zone: ZoneInfo
    weekly_hours: tuple[tuple[WorkingPeriod, ...], ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    make_up_workdays: frozenset[date] = frozenset()
    make_up_day_hours: tuple[WorkingPeriod, ...] = ()
    always_open: bool = False

    def __post_init__(self) -> None:
        # Day rules index weekly_hours by weekday: only check them once its shape is right.
        problems = self._shape_problems() or self._day_problems()
        if problems:
            raise CalendarError(*(f"calendar '{self.name}': {p}" for p in problems))

    def _shape_problems(self) -> list[str]:
        if self.always_open:
            if any(self.weekly_hours) or self.holidays or self.make_up_workdays or self.make_up_day_hours:
                return ["a 24×7 (always_open) calendar cannot also have hours, holidays or make-up days"]
            return []
        if len(self.weekly_hours) != 7:
            return [f"weekly hours must list 7 days (Monday first), got {len(self.weekly_hours)}"]
        problems: list[str] = []
        for day_name, periods in zip(WEEKDAYS, self.weekly_hours, strict=True):
            problems += _overlaps(day_name, periods)
        problems += _overlaps("make-up days", self.make_up_day_hours)
        if not any(self.weekly_hours):
            # Only finitely many make-up days could ever be worked: every SLA would run forever.
            problems.append("no working hours on any weekday; set hours or make the calendar always_open")
        return problems

    def _day_problems(self) -> list[str]:
        problems: list[str] = []
        if self.make_up_workdays and not self.make_up_day_hours:
            problems.append("make-up working days need hours (make_up_day_hours)")
        for day in sorted(self.holidays & self.make_up_workdays):
            problems.append(f"{day} is both a holiday and a make-up working day")
        for day in sorted(self.make_up_workdays - self.holidays):
            if self.weekly_hours and self.weekly_hours[day.weekday()]:
                weekday = WEEKDAYS[day.weekday()]
                problems.append(f"make-up working day {day} is a {weekday}, which is a working day anyway")
        return problems

    # -- what a day looks like -------------------------------------------------------------

    def hours_on(self, day: date) -> tuple[WorkingPeriod, ...]:
        """The working periods of a local calendar day (empty on a day off)."""
        if self.always_open:
            return (WorkingPeriod(0, MINUTES_PER_DAY),)
        if day in self.holidays:
            return ()
        if day in self.make_up_workdays:
            return self.make_up_day_hours
        return self.weekly_hours[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        return bool(self.hours_on(day))

    def is_working_time(self, at: datetime) -> bool:
        _require_aware(at, "at")
        if self.always_open:
            return True
        instant = at.astimezone(UTC)
        return any(opens <= instant < closes for opens, closes in self._spans(self._local_day(instant)))

    # -- deadlines -------------------------------------------------------------------------

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of working time has elapsed since `start` ("4 working
        hours"). A start outside working hours counts from the next opening; a zero duration
        therefore gives that opening."""
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        instant = start.astimezone(UTC)
        if self.always_open:
            return instant + duration
        remaining = duration
        for day in self._days_from(self._local_day(instant)):
            for opens, closes in self._spans(day):
                if closes <= instant:
                    continue
                begin = max(opens, instant)
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
        raise self._too_far(f"{duration} of working time after {start.isoformat()}")

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline of an "N working days" clock.

        The clock starts at `start`, or at the next opening if `start` is outside working hours
        (a ticket logged on Friday evening starts on the next working morning). Then:

        * started at the opening of a working day (including any start before it): the deadline
          is the close of the N-th working day counting that day as the first. Three working
          days from Monday 09:00 (or Sunday 20:00) end on Wednesday at closing time.
        * started during a working day: the deadline is the same local time of day on the N-th
          working day after it. Three working days from Friday 17:00 end at 17:00 on the third
          working day after that Friday. If that day's hours do not contain the time (different
          hours on that day), it is clamped into that day: before opening -> its opening, in a
          break -> the end of the period before the break, after closing -> its closing time.

        Both cases are "N × a working day" of business time on a calendar whose days are alike,
        as in ServiceNow relative durations and Jira Service Management SLA calendars, while
        the deadline always reads as a time on a working day. A 24×7 calendar counts N × 24 h.
        """
        _require_aware(start, "start")
        if days < 1:
            raise ValueError(f"a working-days clock needs at least 1 day, got {days}")
        if self.always_open:
            return start.astimezone(UTC) + days * _DAY
        clock_start = self._clock_start(start.astimezone(UTC))
        local = clock_start.astimezone(self.time_zone)
        first_day = local.date()
        time_of_day = timedelta(
            hours=local.hour, minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        periods = self.hours_on(first_day)
        if time_of_day == timedelta(minutes=periods[0].opens):
            last_day = self._working_day_after(first_day, days - 1) if days > 1 else first_day
            return self._instant(last_day, timedelta(minutes=self.hours_on(last_day)[-1].closes))
        due_day = self._working_day_after(first_day, days)
        return self._instant(due_day, _clamp(self.hours_on(due_day), time_of_day))

    def end_of_working_day(self, start: datetime) -> datetime:
        """The deadline of a "same working day" clock: closing time of the day the work starts
        in. Started after closing (or on a day off) it is the closing time of the next working
        day; started in a break it is the close of that same day. On a 24×7 calendar it is the
        next local midnight."""
        _require_aware(start, "start")
        instant = start.astimezone(UTC)
        if self.always_open:
            return self._instant(self._local_day(instant) + _DAY, timedelta(0))
        day = self._local_day(self._clock_start(instant))
        return self._instant(day, timedelta(minutes=self.hours_on(day)[-1].closes))

    def working_time_between(self, earlier: datetime, later: datetime) -> timedelta:
        """Business time elapsed from `earlier` to `later` (negative if they are swapped).

        This is what a paused SLA clock needs: time used before a pause is
        `working_time_between(started, paused)`, and on resume the new deadline is
        `add_working_time(resumed, budget - used)`."""
        _require_aware(earlier, "earlier")
        _require_aware(later, "later")
        a, b = earlier.astimezone(UTC), later.astimezone(UTC)
        if b < a:
            return -self.working_time_between(later, earlier)
        if self.always_open:
            return b - a
        first, last = self._local_day(a), self._local_day(b)
        if (last - first).days > MAX_SCAN_DAYS:
            raise self._too_far(f"the working time between {earlier.isoformat()} and {later.isoformat()}")
        total = timedelta(0)
        day = first
        while day <= last:
            for opens, closes in self._spans(day):
                overlap = min(closes, b) - max(opens, a)
                if overlap > timedelta(0):
                    total += overlap
            day += _DAY
        return total

    # -- helpers ---------------------------------------------------------------------------

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.time_zone).date()

    def _instant(self, day: date, time_of_day: timedelta) -> datetime:
        """Local wall-clock `time_of_day` on `day`, as UTC. Aware + timedelta in Python is
        wall-clock arithmetic, so the offset is that of the resulting local time (DST-correct);
        24:00 is the next midnight."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.time_zone)
        return (midnight + time_of_day).astimezone(UTC)

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working periods as UTC instants."""
        return [
            (self._instant(day, timedelta(minutes=p.opens)), self._instant(day, timedelta(minutes=p.closes)))
            for p in self.hours_on(day)
        ]

    def _days_from(self, day: date) -> Iterator[date]:
        """`day` and the days after it, up to the scanning bound."""
        return (day + n * _DAY for n in range(MAX_SCAN_DAYS))

    def _clock_start(self, instant: datetime) -> datetime:
        """`instant` if it is working time, else the next opening."""
        for day in self._days_from(self._local_day(instant)):
            for opens, closes in self._spans(day):
                if instant < closes:
                    return max(opens, instant)
        raise self._too_far(f"the next opening after {instant.isoformat()}")

    def _working_day_after(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (not counting `day` itself)."""
        for candidate in self._days_from(day + _DAY):
            if self.is_working_day(candidate):
                count -= 1
                if count == 0:
                    return candidate
        raise self._too_far(f"{count} more working days after {day}")

    def _too_far(self, what: str) -> CalendarError:
        years = MAX_SCAN_DAYS // 366
        return CalendarError(f"calendar '{self.name}': {what} is more than {years} years away")


def _overlaps(day_name: str, periods: tuple[WorkingPeriod, ...]) -> list[str]:
    return [
        f"{day_name}: working periods {before} and {after} overlap or are out of order"
        for before, after in pairwise(periods)
        if after.opens < before.closes
    ]


def _clamp(periods: tuple[WorkingPeriod, ...], time_of_day: timedelta) -> timedelta:
    """Clamp a local time of day into a working day's periods (see `add_working_days`)."""
    clamped = timedelta(minutes=periods[0].opens)
    for period in periods:
        opens, closes = timedelta(minutes=period.opens), timedelta(minutes=period.closes)
        if time_of_day < opens:
            return clamped  # before opening, or in a break: the latest working moment before it
        if time_of_day <= closes:
            return time_of_day
        clamped = closes
    return clamped


def _require_aware(at: datetime, name: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {at.isoformat()}")
