"""Business calendars as a support manager checks them: due times of real tickets across real
2025/2026 Chinese holidays and make-up working days (调休), lunch breaks, weekends, a 24×7 P0
calendar, Berlin summer time, paused clocks, and the shipped calendar files.

Every expected value is worked out by hand from the calendar (cn-workdays: Mon–Fri
09:00–12:00 and 13:00–18:00 Shanghai, 8 working hours a day); the comments show the counting.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.workflow.domain.calendar import BusinessCalendar, CalendarError
from services.workflow.domain.calendar_format import parse_calendar

CALENDARS = Path(__file__).resolve().parents[2] / "bpmn" / "calendars"
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)


@cache
def shipped(name: str) -> BusinessCalendar:
    path = CALENDARS / f"{name}.toml"
    return parse_calendar(path.read_text(encoding="utf-8"), source=path.name)


def cn() -> BusinessCalendar:
    return shipped("cn-workdays")


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


def days(first: date, last: date) -> set[date]:
    return {first + timedelta(n) for n in range((last - first).days + 1)}


# -- working days around Chinese holidays ----------------------------------------------------


def test_three_working_days_from_friday_before_spring_festival_count_the_make_up_sunday() -> None:
    # Fri 2025-01-24 17:00: Sun 26 (make-up, 1), Mon 27 (2), Jan 28–Feb 4 off, Wed Feb 5 (3).
    due = cn().add_working_days(sh(2025, 1, 24, 17), 3)
    assert due == sh(2025, 2, 5, 17)
    assert due.tzinfo is UTC


def test_ticket_on_the_eve_of_spring_festival_skips_the_whole_holiday() -> None:
    # Mon 2025-01-27 10:00: Jan 28–Feb 4 off; Wed Feb 5 (1), Thu Feb 6 (2), Fri Feb 7 (3).
    assert cn().add_working_days(sh(2025, 1, 27, 10), 3) == sh(2025, 2, 7, 10)
    # 8 working hours: Mon 10:00–12:00 and 13:00–18:00 = 7 h, then Feb 5 09:00–10:00.
    assert cn().add_working_time(sh(2025, 1, 27, 10), 8 * HOUR) == sh(2025, 2, 5, 10)


def test_holidays_and_make_up_days_are_what_the_calendar_says_about_a_date() -> None:
    calendar = cn()
    assert not calendar.is_working_day(date(2025, 1, 28))  # 除夕
    assert calendar.is_working_day(date(2025, 1, 26))  # Sunday worked (调休)
    assert calendar.is_working_time(sh(2025, 2, 8, 10))  # Saturday worked
    assert not calendar.is_working_time(sh(2025, 10, 8, 10))  # last day of the 2025 golden week
    assert not calendar.is_working_time(sh(2026, 1, 3, 10))  # New Year 2026 is Jan 1–3


def test_ticket_logged_friday_evening_starts_on_the_make_up_sunday_and_ends_at_closing_time() -> None:
    # Clock starts Sun 2025-01-26 09:00: Sun (1), Mon 27 (2), Wed Feb 5 (3) -> Feb 5 at closing.
    assert cn().add_working_days(sh(2025, 1, 24, 18, 30), 3) == sh(2025, 2, 5, 18)


def test_working_days_from_the_opening_bell_end_at_closing_time_not_the_next_morning() -> None:
    # Mon 2025-03-03 09:00: Mon (1), Tue (2), Wed (3) -> Wed 18:00; same for a Sunday-night ticket.
    assert cn().add_working_days(sh(2025, 3, 3, 9), 3) == sh(2025, 3, 5, 18)
    assert cn().add_working_days(sh(2025, 3, 2, 20), 3) == sh(2025, 3, 5, 18)
    assert cn().add_working_days(sh(2025, 3, 3, 9), 1) == sh(2025, 3, 3, 18)


def test_2026_national_day_week_counts_the_sep_20_and_oct_10_make_up_days() -> None:
    calendar = cn()
    # Fri 2026-09-18 15:00: Sat 19 off, Sun 20 worked (1), Mon 21 (2), Tue 22 (3).
    assert calendar.add_working_days(sh(2026, 9, 18, 15), 3) == sh(2026, 9, 22, 15)
    # P3, 5 working days from Tue 2026-09-29 14:00: Wed 30 (1), Oct 1–7 off, Thu 8 (2), Fri 9 (3),
    # Sat 10 worked (4), Sun 11 off, Mon 12 (5).
    assert calendar.add_working_days(sh(2026, 9, 29, 14), 5) == sh(2026, 10, 12, 14)
    # Mid-Autumn (Sep 25–27) and National Day are separate in 2026: Thu Sep 24 10:00 + 1 day = Mon 28.
    assert calendar.add_working_days(sh(2026, 9, 24, 10), 1) == sh(2026, 9, 28, 10)


def test_2026_spring_festival_with_make_up_saturdays_either_side() -> None:
    # Fri 2026-02-13 11:00: Sat 14 worked (1), Feb 15–23 off, Tue 24 (2), Wed 25 (3).
    assert cn().add_working_days(sh(2026, 2, 13, 11), 3) == sh(2026, 2, 25, 11)
    # Fri 2026-02-27 16:00 + 4 working hours: Fri 16–18 (2 h), Sat 28 worked 09–11 -> Sat 11:00.
    assert cn().add_working_time(sh(2026, 2, 27, 16), 4 * HOUR) == sh(2026, 2, 28, 11)


# -- same working day, hours, lunch ---------------------------------------------------------------


def test_same_working_day_at_17_59_is_today_and_at_18_01_is_the_next_working_day() -> None:
    calendar = cn()
    assert calendar.end_of_working_day(sh(2025, 3, 3, 17, 59)) == sh(2025, 3, 3, 18)
    assert calendar.end_of_working_day(sh(2025, 3, 3, 18, 1)) == sh(2025, 3, 4, 18)
    # Friday after hours before Spring Festival: next working day is the make-up Sunday.
    assert calendar.end_of_working_day(sh(2025, 1, 24, 18, 1)) == sh(2025, 1, 26, 18)
    # During lunch the day is not over.
    assert calendar.end_of_working_day(sh(2025, 3, 3, 12, 30)) == sh(2025, 3, 3, 18)


def test_lunch_break_is_not_working_time() -> None:
    calendar = cn()
    assert calendar.is_working_time(sh(2025, 3, 3, 11, 59))
    assert not calendar.is_working_time(sh(2025, 3, 3, 12, 0))
    assert calendar.is_working_time(sh(2025, 3, 3, 13, 0))
    # 11:00 + 2 working hours: 11–12, lunch, 13–14.
    assert calendar.add_working_time(sh(2025, 3, 3, 11), 2 * HOUR) == sh(2025, 3, 3, 14)
    # Logged during lunch: the clock starts at 13:00.
    assert calendar.add_working_time(sh(2025, 3, 3, 12, 30), HOUR) == sh(2025, 3, 3, 14)


def test_four_working_hours_across_a_weekend() -> None:
    # Fri 2025-03-07 16:00: 16–18 (2 h), Sat/Sun off, Mon 10 09–11 (2 h).
    assert cn().add_working_time(sh(2025, 3, 7, 16), 4 * HOUR) == sh(2025, 3, 10, 11)


def test_a_deadline_that_uses_up_the_morning_is_noon_not_after_lunch() -> None:
    assert cn().add_working_time(sh(2025, 3, 3, 9), 3 * HOUR) == sh(2025, 3, 3, 12)


# -- elapsed business time and paused clocks ------------------------------------------------------


def test_working_time_across_qingming_counts_only_open_hours() -> None:
    # Thu 2025-04-03 15:00 -> Mon 2025-04-07 11:00: Thu 15–18 (180 min), Fri Apr 4 holiday,
    # weekend, Mon 09–11 (120 min).
    assert cn().working_time_between(sh(2025, 4, 3, 15), sh(2025, 4, 7, 11)) == timedelta(minutes=300)


def test_working_time_across_labour_day_includes_the_make_up_sunday() -> None:
    # Fri 2025-04-25 17:00 -> Tue 2025-05-06 10:00: Fri 1 h, Sun 27 (worked) + Mon–Wed 28–30
    # = 4 × 8 h, May 1–5 off, Tue 6 09–10 1 h.
    assert cn().working_time_between(sh(2025, 4, 25, 17), sh(2025, 5, 6, 10)) == 34 * HOUR


def test_working_time_across_the_2026_golden_week() -> None:
    calendar = cn()
    assert calendar.working_time_between(sh(2026, 9, 30, 9), sh(2026, 10, 8, 9)) == 8 * HOUR
    # Fri Oct 9 (8 h) + Sat Oct 10 worked (8 h).
    assert calendar.working_time_between(sh(2026, 10, 9, 9), sh(2026, 10, 12, 9)) == 16 * HOUR


def test_working_time_between_swapped_instants_is_negative() -> None:
    calendar = cn()
    assert calendar.working_time_between(sh(2025, 3, 3, 11), sh(2025, 3, 3, 10)) == -HOUR


def test_clock_paused_while_waiting_on_the_requester_resumes_with_the_rest_of_its_budget() -> None:
    calendar = cn()
    budget = 24 * HOUR  # P2: 3 working days of 8 h
    submitted, paused, resumed = sh(2025, 3, 3, 10), sh(2025, 3, 4, 11), sh(2025, 3, 10, 14)
    used = calendar.working_time_between(submitted, paused)
    assert used == 9 * HOUR  # Mon 10–12, 13–18 (7 h) + Tue 09–11 (2 h)
    # 15 h left from Mon 10 14:00: Mon 4 h, Tue 11 8 h, Wed 12 09–12 3 h -> Wed 12:00.
    assert calendar.add_working_time(resumed, budget - used) == sh(2025, 3, 12, 12)


@pytest.mark.parametrize("hours", [0.5, 1, 7, 8, 9, 23.5, 40, 200])
def test_adding_working_time_and_measuring_it_agree(hours: float) -> None:
    start = sh(2025, 1, 24, 17, 10)
    due = cn().add_working_time(start, timedelta(hours=hours))
    assert cn().working_time_between(start, due) == timedelta(hours=hours)


# -- clamping when days have different hours -----------------------------------------------------

SHORT_FRIDAY = """
name = "short-friday"
time_zone = "Asia/Shanghai"
make_up_day_hours = ["10:00-16:00"]
[hours]
monday = ["09:00-18:00"]
tuesday = ["09:00-18:00"]
wednesday = ["09:00-18:00"]
thursday = ["09:00-18:00"]
friday = ["09:00-12:00", "14:00-15:00"]
saturday = []
sunday = []
[[holidays]]
name = "Spring Festival"
first_day = 2025-01-28
last_day = 2025-02-04
make_up_workdays = [2025-01-26]
"""


def test_a_day_later_than_the_due_day_closes_is_clamped_to_its_closing_time() -> None:
    calendar = parse_calendar(SHORT_FRIDAY)
    # Thu 2025-03-06 16:00 + 1 working day -> Fri 16:00, but Friday closes at 15:00.
    assert calendar.add_working_days(sh(2025, 3, 6, 16), 1) == sh(2025, 3, 7, 15)
    # Thu 13:00 + 1 working day -> Fri 13:00 is in Friday's break: end of the morning, 12:00.
    assert calendar.add_working_days(sh(2025, 3, 6, 13), 1) == sh(2025, 3, 7, 12)


def test_make_up_days_use_their_own_hours() -> None:
    calendar = parse_calendar(SHORT_FRIDAY)
    # Fri 2025-01-24 09:00 -> Mon 27 09:00: Fri 3 h + 1 h, Sun 26 worked 10:00–16:00 (6 h).
    assert calendar.working_time_between(sh(2025, 1, 24, 9), sh(2025, 1, 27, 9)) == 10 * HOUR
    # Thu 2025-01-23 09:30 + 1 working day -> Fri 24 09:30, + 2 -> Sun 26, 09:30 clamped to 10:00.
    assert calendar.add_working_days(sh(2025, 1, 23, 9, 30), 2) == sh(2025, 1, 26, 10)


# -- 24×7 --------------------------------------------------------------------------------------


def test_24x7_ignores_hours_weekends_and_holidays() -> None:
    always = shipped("24x7")
    assert always.is_working_time(sh(2025, 1, 28, 3))  # 03:00 on Spring Festival eve
    assert always.add_working_time(sh(2025, 1, 28, 22), 4 * HOUR) == sh(2025, 1, 29, 2)
    assert always.add_working_days(sh(2025, 1, 24, 17), 3) == sh(2025, 1, 27, 17)
    assert always.working_time_between(sh(2025, 1, 24, 17), sh(2025, 2, 5, 17)) == timedelta(days=12)
    assert always.end_of_working_day(sh(2025, 1, 24, 17)) == sh(2025, 1, 25, 0)


# -- Berlin: daylight saving time ------------------------------------------------------------------


def test_berlin_desk_opens_at_0800_local_after_clocks_go_forward() -> None:
    de = shipped("de-workdays")
    # Fri 2025-03-28 16:00 CET + 2 h: Fri 16–17, clocks change Sun 30, Mon 31 08:00–09:00 CEST.
    due = de.add_working_time(berlin(2025, 3, 28, 16), 2 * HOUR)
    assert due == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    assert de.working_time_between(berlin(2025, 3, 28, 8), berlin(2025, 3, 31, 17)) == 18 * HOUR


def test_berlin_working_days_keep_wall_clock_time_across_the_change() -> None:
    de = shipped("de-workdays")
    # Thu 2025-03-27 10:00 CET (09:00 UTC): Fri 28 (1), Mon 31 (2), Tue Apr 1 (3) -> 10:00 CEST.
    start = berlin(2025, 3, 27, 10)
    due = de.add_working_days(start, 3)
    assert due == datetime(2025, 4, 1, 8, 0, tzinfo=UTC)
    assert due - start == timedelta(days=5) - HOUR
    # Clocks go back Sun 2025-10-26: Fri 24 16:00 CEST + 2 h -> Mon 27 09:00 CET (08:00 UTC).
    assert de.add_working_time(berlin(2025, 10, 24, 16), 2 * HOUR) == datetime(2025, 10, 27, 8, 0, tzinfo=UTC)


def test_berlin_easter_holidays() -> None:
    # Thu 2025-04-17 10:00: Good Friday 18 and Easter Monday 21 off; Tue 22 (1), Wed 23 (2).
    assert shipped("de-workdays").add_working_days(berlin(2025, 4, 17, 10), 2) == berlin(2025, 4, 23, 10)


# -- refusing bad input -------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 3, 3, 10)
    calendar = cn()
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.is_working_time(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_time(naive, HOUR)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.end_of_working_day(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.working_time_between(sh(2025, 3, 3), naive)


def test_negative_durations_and_zero_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        cn().add_working_time(sh(2025, 3, 3, 10), -HOUR)
    with pytest.raises(ValueError, match="at least 1 day"):
        cn().add_working_days(sh(2025, 3, 3, 10), 0)


def test_a_deadline_more_than_ten_years_away_is_refused_rather_than_scanned_forever() -> None:
    # 8 h × ~250 working days ≈ 2,000 h a year: 30,000 h is about 15 years.
    with pytest.raises(CalendarError, match="more than 10 years"):
        cn().add_working_time(sh(2025, 3, 3, 10), 30_000 * HOUR)


# -- the shipped files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CALENDARS.glob("*.toml")), ids=lambda p: p.name)
def test_each_shipped_calendar_loads_and_is_named_after_its_file(path: Path) -> None:
    calendar = parse_calendar(path.read_text(encoding="utf-8"), source=path.name)
    assert calendar.name == path.stem


def test_shipped_chinese_calendar_matches_the_state_council_notices() -> None:
    calendar = cn()
    official_2025 = (
        {date(2025, 1, 1)}
        | days(date(2025, 1, 28), date(2025, 2, 4))
        | days(date(2025, 4, 4), date(2025, 4, 6))
        | days(date(2025, 5, 1), date(2025, 5, 5))
        | days(date(2025, 5, 31), date(2025, 6, 2))
        | days(date(2025, 10, 1), date(2025, 10, 8))
    )
    official_2026 = (
        days(date(2026, 1, 1), date(2026, 1, 3))
        | days(date(2026, 2, 15), date(2026, 2, 23))
        | days(date(2026, 4, 4), date(2026, 4, 6))
        | days(date(2026, 5, 1), date(2026, 5, 5))
        | days(date(2026, 6, 19), date(2026, 6, 21))
        | days(date(2026, 9, 25), date(2026, 9, 27))
        | days(date(2026, 10, 1), date(2026, 10, 7))
    )
    assert calendar.holidays == official_2025 | official_2026
    assert calendar.make_up_workdays == {
        date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11),
        date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
        date(2026, 10, 10),
    }  # fmt: skip
    assert all(day.weekday() >= 5 for day in calendar.make_up_workdays)  # all are weekend days


# -- malformed files ---------------------------------------------------------------------------

VALID_HOURS = """
[hours]
monday = ["09:00-12:00", "13:00-18:00"]
tuesday = ["09:00-18:00"]
wednesday = ["09:00-18:00"]
thursday = ["09:00-18:00"]
friday = ["09:00-18:00"]
saturday = []
sunday = []
"""
HEADER = 'name = "acme"\ntime_zone = "Asia/Shanghai"\n'


def holidays(*entries: str) -> str:
    return "".join(f'\n[[holidays]]\nname = "h{n}"\n{entry}\n' for n, entry in enumerate(entries, start=1))


MALFORMED = [
    pytest.param(
        HEADER + VALID_HOURS + holidays("date = 2025-01-01", "date = 2025-05-01", 'date = "2025-02-30"'),
        "acme.toml: holidays[3].date: '2025-02-30' is not a date (YYYY-MM-DD)",
        id="impossible-date",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("date = 2025-02-30"),
        "acme.toml: not valid TOML: Invalid date or datetime (at line 15, column 8)",
        id="impossible-bare-date",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace('"13:00-18:00"', '"13:30-12:00"'),
        "hours.monday[2]: '13:30-12:00' closes before it opens",
        id="period-backwards",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace('"13:00-18:00"', '"11:00-18:00"'),
        "hours.monday[2]: 11:00-18:00 overlaps or comes before 09:00-12:00",
        id="periods-overlap",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace('tuesday = ["09:00-18:00"]', 'tuesday = ["9-18"]'),
        "hours.tuesday[1]: '9-18' is not a period like \"09:00-12:00\"",
        id="period-syntax",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace('"09:00-18:00"]\nthursday', '"09:00-25:00"]\nthursday'),
        "hours.wednesday[1]: '09:00-25:00' is not a time of day (00:00 to 24:00)",
        id="hour-25",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace("wednesday", "wendesday"),
        "hours.wendesday: unknown key",
        id="misspelt-day",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace("sunday = []\n", ""),
        "hours: missing sunday (write [] for a closed day)",
        id="missing-day",
    ),
    pytest.param(
        HEADER.replace("Asia/Shanghai", "Asia/Shangai") + VALID_HOURS,
        "time_zone: 'Asia/Shangai' is not a known time zone",
        id="time-zone-typo",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("frist_day = 2025-01-28\nlast_day = 2025-02-04"),
        "holidays[1].frist_day: unknown key",
        id="misspelt-holiday-key",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("first_day = 2025-02-04\nlast_day = 2025-01-28"),
        "holidays[1]: last_day 2025-01-28 is before first_day 2025-02-04",
        id="range-backwards",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("date = 2025-05-01", "first_day = 2025-04-30\nlast_day = 2025-05-02"),
        "holidays[2]: 2025-05-01 is already a holiday in holidays[1]",
        id="date-listed-twice",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("date = 2025-01-26\nmake_up_workdays = [2025-01-26]"),
        "2025-01-26 is both a holiday and a make-up working day",
        id="make-up-day-is-holiday",
    ),
    pytest.param(
        HEADER + VALID_HOURS + holidays("date = 2025-01-28\nmake_up_workdays = [2025-01-27]"),
        "make-up working day 2025-01-27 is a monday, which is a working day anyway",
        id="make-up-day-on-weekday",
    ),
    pytest.param(
        HEADER + VALID_HOURS.replace('["09:00-12:00", "13:00-18:00"]', "[]").replace('["09:00-18:00"]', "[]"),
        "no working hours on any weekday",
        id="never-open",
    ),
    pytest.param(
        HEADER + "always_open = true\n" + VALID_HOURS,
        "always_open = true: remove hours",
        id="24x7-with-hours",
    ),
    pytest.param(VALID_HOURS, "name: required", id="no-name"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_calendar_files_name_the_offending_key(text: str, message: str) -> None:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(text, source="acme.toml")
    assert message in str(caught.value)
    assert all(problem.startswith("acme.toml: ") for problem in caught.value.problems)


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = HEADER.replace("Asia/Shanghai", "Mars/Olympus") + VALID_HOURS.replace("friday", "fryday")
    with pytest.raises(CalendarError) as caught:
        parse_calendar(text, source="acme.toml")
    assert len(caught.value.problems) == 3  # time zone, unknown 'fryday', missing friday
