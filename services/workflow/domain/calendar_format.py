"""The calendar file process admins edit (`bpmn/calendars/*.toml`), parsed into a
`BusinessCalendar`.

Pure: takes the file's text, never opens it. Every problem is reported at once, each naming
the key it is about (`hours.monday[2]`, `holidays[3].first_day`; list entries are counted from
1, as an admin counts them), so a broken file can be fixed in one pass. The shape:

    name = "cn-workdays"
    time_zone = "Asia/Shanghai"
    make_up_day_hours = [...]   # optional, before [hours]; make-up days use Monday's otherwise

    [hours]                     # all seven days; [] = closed
    monday = ["09:00-12:00", "13:00-18:00"]
    ...
    sunday = []

    [[holidays]]
    name = "春节 Spring Festival"
    first_day = 2025-01-28      # or: date = 2025-01-01 for a single day
    last_day = 2025-02-04
    make_up_workdays = [2025-01-26, 2025-02-08]   # weekend days worked instead (调休)

A 24×7 calendar is `name`, `time_zone` and `always_open = true`, nothing else. Dates may be
written bare (TOML dates) or quoted ("2025-01-28").
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.workflow.domain.calendar import (
    MINUTES_PER_DAY,
    WEEKDAYS,
    BusinessCalendar,
    CalendarError,
    WorkingPeriod,
)

_TOP_LEVEL_KEYS = ("name", "time_zone", "always_open", "hours", "make_up_day_hours", "holidays")
_HOLIDAY_KEYS = ("name", "date", "first_day", "last_day", "make_up_workdays")
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: A holiday longer than this is a typo in a year, not a festival.
_LONGEST_HOLIDAY = timedelta(days=31)


def parse_calendar(text: str, *, source: str = "calendar") -> BusinessCalendar:
    """Parse a calendar file's text; `source` (usually the file name) prefixes every message."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{source}: not valid TOML: {exc}") from None
    parser = _Parser()
    calendar = parser.calendar(data)
    if parser.problems or calendar is None:
        raise CalendarError(*(f"{source}: {p}" for p in parser.problems))
    return calendar


class _Parser:
    """Collects problems while reading; `calendar()` returns None if there were any."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def calendar(self, data: dict[str, Any]) -> BusinessCalendar | None:
        self._unknown_keys("", data, _TOP_LEVEL_KEYS)
        name = self._text("name", data.get("name"))
        zone = self._zone(data.get("time_zone"))
        always_open = data.get("always_open", False)
        if not isinstance(always_open, bool):
            self.problems.append(f"always_open: expected true or false, got {always_open!r}")
            return None
        if always_open:
            extra = [key for key in ("hours", "make_up_day_hours", "holidays") if key in data]
            if extra:
                self.problems.append(f"always_open = true: remove {', '.join(extra)} (a 24×7 calendar has none)")
            if self.problems or name is None or zone is None:
                return None
            return self._build(name=name, time_zone=zone, always_open=True)
        weekly = self._weekly_hours(data.get("hours"))
        holidays, make_up_days = self._holidays(data.get("holidays", []))
        # Make-up days are ordinary working days moved onto a weekend: Monday's hours by default.
        make_up_hours = weekly[0] if weekly else ()
        if "make_up_day_hours" in data:
            make_up_hours = self._periods("make_up_day_hours", data["make_up_day_hours"])
        if self.problems or name is None or zone is None or weekly is None:
            return None
        return self._build(
            name=name,
            time_zone=zone,
            weekly_hours=weekly,
            holidays=frozenset(holidays),
            make_up_workdays=frozenset(make_up_days),
            make_up_day_hours=make_up_hours,
        )

    def _build(self, **fields: Any) -> BusinessCalendar | None:
        """Construct the calendar; its cross-field rules (no working time at all, a make-up day
        that is also a holiday) are the model's and are reported like any other problem."""
        try:
            return BusinessCalendar(**fields)
        except CalendarError as exc:
            self.problems.extend(exc.problems)
            return None

    # -- values ----------------------------------------------------------------------------

    def _text(self, key: str, value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f'{key}: required, a non-empty text such as "cn-workdays"')
            return None
        return value.strip()

    def _zone(self, value: object) -> ZoneInfo | None:
        if not isinstance(value, str) or not value.strip():
            self.problems.append('time_zone: required, an IANA time zone such as "Asia/Shanghai"')
            return None
        try:
            return ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.append(f"time_zone: '{value}' is not a known time zone (e.g. \"Asia/Shanghai\")")
            return None

    def _weekly_hours(self, value: object) -> tuple[tuple[WorkingPeriod, ...], ...] | None:
        if not isinstance(value, dict):
            self.problems.append("hours: required, a [hours] table with monday … sunday")
            return None
        self._unknown_keys("hours.", value, WEEKDAYS)
        missing = [day for day in WEEKDAYS if day not in value]
        if missing:
            self.problems.append(f"hours: missing {', '.join(missing)} (write [] for a closed day)")
            return None
        return tuple(self._periods(f"hours.{day}", value[day]) for day in WEEKDAYS)

    def _periods(self, key: str, value: object) -> tuple[WorkingPeriod, ...]:
        if not isinstance(value, list):
            self.problems.append(f'{key}: expected a list such as ["09:00-12:00", "13:00-18:00"], got {value!r}')
            return ()
        periods = [self._period(f"{key}[{n}]", item) for n, item in enumerate(value, start=1)]
        found = tuple(p for p in periods if p is not None)
        if len(found) == len(periods):  # numbering is only right when every entry parsed
            for n, (before, after) in enumerate(pairwise(found), start=2):
                if after.opens < before.closes:
                    self.problems.append(f"{key}[{n}]: {after} overlaps or comes before {before}")
        return found

    def _period(self, key: str, value: object) -> WorkingPeriod | None:
        match = _PERIOD.match(value) if isinstance(value, str) else None
        if match is None:
            self.problems.append(f'{key}: {value!r} is not a period like "09:00-12:00"')
            return None
        oh, om, ch, cm = (int(g) for g in match.groups())
        opens, closes = oh * 60 + om, ch * 60 + cm
        if oh > 23 or om > 59 or cm > 59 or closes > MINUTES_PER_DAY:
            self.problems.append(f"{key}: '{value}' is not a time of day (00:00 to 24:00)")
            return None
        if closes <= opens:
            self.problems.append(f"{key}: '{value}' closes before it opens (periods cannot pass midnight)")
            return None
        return WorkingPeriod(opens, closes)

    def _date(self, key: str, value: object) -> date | None:
        # tomllib gives bare dates as `date`, date-times as `datetime` (a subclass): refuse those.
        if isinstance(value, date) and type(value) is date:
            return value
        if isinstance(value, str) and _ISO_DATE.match(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.problems.append(f"{key}: {value!r} is not a date (YYYY-MM-DD)")
        return None

    # -- holidays --------------------------------------------------------------------------

    def _holidays(self, value: object) -> tuple[set[date], set[date]]:
        holidays: dict[date, str] = {}
        make_up_days: dict[date, str] = {}
        if not isinstance(value, list):
            self.problems.append("holidays: expected [[holidays]] entries")
            return set(), set()
        for n, entry in enumerate(value, start=1):
            key = f"holidays[{n}]"
            if not isinstance(entry, dict):
                self.problems.append(f"{key}: expected a [[holidays]] table with name and dates")
                continue
            self._unknown_keys(f"{key}.", entry, _HOLIDAY_KEYS)
            self._text(f"{key}.name", entry.get("name"))
            for day in self._holiday_days(key, entry):
                self._claim(holidays, day, key, "holiday")
            raw_make_up = entry.get("make_up_workdays", [])
            if not isinstance(raw_make_up, list):
                self.problems.append(f"{key}.make_up_workdays: expected a list of dates, got {raw_make_up!r}")
                continue
            for m, raw in enumerate(raw_make_up, start=1):
                worked = self._date(f"{key}.make_up_workdays[{m}]", raw)
                if worked is not None:
                    self._claim(make_up_days, worked, f"{key}.make_up_workdays[{m}]", "make-up working day")
        return set(holidays), set(make_up_days)

    def _holiday_days(self, key: str, entry: dict[str, Any]) -> list[date]:
        if "date" in entry:
            if "first_day" in entry or "last_day" in entry:
                self.problems.append(f"{key}: give either date, or first_day and last_day, not both")
                return []
            day = self._date(f"{key}.date", entry["date"])
            return [] if day is None else [day]
        if "first_day" not in entry or "last_day" not in entry:
            self.problems.append(f"{key}: needs date, or first_day and last_day")
            return []
        first = self._date(f"{key}.first_day", entry["first_day"])
        last = self._date(f"{key}.last_day", entry["last_day"])
        if first is None or last is None:
            return []
        if last < first:
            self.problems.append(f"{key}: last_day {last} is before first_day {first}")
            return []
        if last - first >= _LONGEST_HOLIDAY:
            self.problems.append(f"{key}: {first} to {last} is longer than {_LONGEST_HOLIDAY.days} days")
            return []
        return [first + timedelta(days=d) for d in range((last - first).days + 1)]

    def _claim(self, seen: dict[date, str], day: date, key: str, what: str) -> None:
        """Record `day`, reporting a date listed twice (usually a copy-paste from last year)."""
        if day in seen:
            self.problems.append(f"{key}: {day} is already a {what} in {seen[day]}")
        else:
            seen[day] = key

    def _unknown_keys(self, prefix: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                self.problems.append(f"{prefix}{key}: unknown key (expected one of: {', '.join(known)})")
