"""SLA clocks as a support manager follows them: due times, warnings at 80 % and breaches of
real tickets across lunch breaks, weekends, 2025 Chinese holidays and make-up working days
(调休), a 24×7 P0 clock, clocks paused while waiting for the requester, and the diagram
properties that drive them.

Every expected value is worked out by hand from the shipped calendars (cn-workdays: Mon–Fri
09:00–12:00 and 13:00–18:00 Shanghai, 8 working hours a day); the comments show the counting.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.workflow.domain.calendar import BusinessCalendar
from services.workflow.domain.calendar_format import parse_calendar
from services.workflow.domain.sla import (
    ClockAction,
    ClockCommand,
    ClockSignal,
    ClockState,
    SlaError,
    TargetKind,
    parse_clock_properties,
    parse_target,
    start_clock,
)

CALENDARS = Path(__file__).resolve().parents[2] / "bpmn" / "calendars"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)
WARNING, BREACHED = ClockSignal.WARNING, ClockSignal.BREACHED


@cache
def shipped(name: str) -> BusinessCalendar:
    path = CALENDARS / f"{name}.toml"
    return parse_calendar(path.read_text(encoding="utf-8"), source=path.name)


def cn() -> BusinessCalendar:
    return shipped("cn-workdays")


def always() -> BusinessCalendar:
    return shipped("24x7")


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


# -- targets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "working_time", "working_days", "normalised"),
    [
        ("PT15M", TargetKind.WORKING_TIME, 15 * MINUTE, 0, "PT15M"),
        ("PT2H", TargetKind.WORKING_TIME, 2 * HOUR, 0, "PT2H"),
        ("PT1H30M", TargetKind.WORKING_TIME, 90 * MINUTE, 0, "PT1H30M"),
        ("PT60S", TargetKind.WORKING_TIME, MINUTE, 0, "PT60S"),
        (" pt8h ", TargetKind.WORKING_TIME, 8 * HOUR, 0, "PT8H"),
        ("P3D", TargetKind.WORKING_DAYS, timedelta(0), 3, "P3D"),
        ("eod", TargetKind.END_OF_WORKING_DAY, timedelta(0), 0, "EOD"),
    ],
)
def test_sop_targets_parse(
    text: str, kind: TargetKind, working_time: timedelta, working_days: int, normalised: str
) -> None:
    target = parse_target(text)
    assert (target.kind, target.working_time, target.working_days, target.text) == (
        kind,
        working_time,
        working_days,
        normalised,
    )


def test_a_negative_target_is_refused_with_what_would_be_accepted() -> None:
    with pytest.raises(SlaError) as caught:
        parse_target("PT-5M")
    assert str(caught.value) == (
        """sla target 'PT-5M': must be a positive ISO 8601 duration, "P<n>D" working days or "EOD\""""
    )


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", ""),
        ("PT0M", ""),
        ("P0D", ""),
        ("PT", ""),
        ("P3", ""),
        ("3 days", ""),
        ("PT15m later", ""),
        (None, ""),
        (30, ""),
        ("PT1.5H", "fractions are not supported"),
        ("P1M", "years, months and weeks are not supported"),
        ("P2W", "years, months and weeks are not supported"),
        ("P1DT4H", "working days and hours cannot be combined"),
        ("P4000D", "longer than 10 years"),
        ("PT999999999H", "longer than 10 years"),
    ],
)
def test_unusable_targets_are_refused_naming_the_text(text: object, hint: str) -> None:
    with pytest.raises(SlaError) as caught:
        parse_target(text)
    assert str(caught.value).startswith(f"sla target {text!r}: must be a positive ISO 8601 duration")
    assert hint in str(caught.value)


def test_targets_give_the_due_times_the_sop_promises() -> None:
    calendar = cn()
    # P1 "same working day", logged Fri 2025-01-24 18:30 before Spring Festival: the next working
    # day is the make-up Sunday 26th, due at its close.
    assert parse_target("EOD").due(sh(2025, 1, 24, 18, 30), calendar) == sh(2025, 1, 26, 18)
    # P2 3 working days from Fri 2025-01-24 17:00: Sun 26 (1), Mon 27 (2), holiday, Wed Feb 5 (3).
    assert parse_target("P3D").due(sh(2025, 1, 24, 17), calendar) == sh(2025, 2, 5, 17)
    # P1 assign within 30 min at 11:45: 15 min before lunch, 15 min after -> 13:15.
    assert parse_target("PT30M").due(sh(2025, 3, 3, 11, 45), calendar) == sh(2025, 3, 3, 13, 15)


# -- starting ------------------------------------------------------------------------------------


def test_a_clock_starts_running_with_its_target_as_a_budget_of_working_time() -> None:
    # P2 3 working days from Fri 2025-01-24 17:00, due Wed Feb 5 17:00: Fri 1 h + Sun 26 8 h +
    # Mon 27 8 h + Feb 5 09–12, 13–17 7 h = 24 h.
    clock = start_clock("resolve", "P3D", cn(), sh(2025, 1, 24, 17))
    assert clock.state is ClockState.RUNNING
    assert (clock.name, clock.calendar, clock.target) == ("resolve", "cn-workdays", "P3D")
    assert clock.started_at == sh(2025, 1, 24, 17)
    assert clock.started_at.tzinfo is UTC
    assert clock.due_at == sh(2025, 2, 5, 17)
    assert clock.budget == clock.remaining == 24 * HOUR
    assert clock.running_since == clock.started_at
    assert (clock.paused_at, clock.stopped_at, clock.warned) == (None, None, False)


def test_same_working_day_budget_is_what_is_left_of_the_day() -> None:
    # EOD at 10:30: 10:30–12:00 and 13:00–18:00 = 6.5 h.
    assert start_clock("resolve", "EOD", cn(), sh(2025, 3, 3, 10, 30)).budget == timedelta(hours=6.5)


def test_a_clock_started_on_friday_evening_counts_from_monday_opening() -> None:
    calendar = cn()
    clock = start_clock("first_response", "PT2H", calendar, sh(2025, 3, 7, 19))
    assert clock.due_at == sh(2025, 3, 10, 11)
    assert clock.budget == 2 * HOUR
    assert clock.remaining_at(sh(2025, 3, 8, 12), calendar) == 2 * HOUR  # Saturday: nothing spent
    assert clock.remaining_at(sh(2025, 3, 10, 10), calendar) == HOUR
    # 80 % of 2 h = 96 min after Monday's opening.
    assert clock.next_check_at(calendar) == sh(2025, 3, 10, 10, 36)
    assert clock.tick(sh(2025, 3, 9, 23), calendar) == (clock, [])


def test_p0_clock_on_24x7_runs_through_the_spring_festival_night() -> None:
    calendar = always()
    # P0 first response 30 min (24×7), ticket at 03:00 on Sat 2025-02-01, a holiday.
    clock = start_clock("first_response", "PT30M", calendar, sh(2025, 2, 1, 3))
    assert clock.due_at == sh(2025, 2, 1, 3, 30)
    assert clock.next_check_at(calendar) == sh(2025, 2, 1, 3, 24)  # 80 % of 30 min
    warned, signals = clock.tick(sh(2025, 2, 1, 3, 24), calendar)
    assert signals == [WARNING]
    assert warned.remaining_at(sh(2025, 2, 1, 3, 24), calendar) == 6 * MINUTE
    breached, signals = warned.tick(sh(2025, 2, 1, 3, 30), calendar)
    assert signals == [BREACHED]
    assert breached.state is ClockState.BREACHED


def test_a_clock_needs_a_usable_name_target_and_time() -> None:
    with pytest.raises(SlaError, match=r"sla clock name 'sla\.breached\.assign'"):
        start_clock("sla.breached.assign", "PT1H", cn(), sh(2025, 3, 3, 10))
    with pytest.raises(SlaError, match="sla target ''"):
        start_clock("assign", "", cn(), sh(2025, 3, 3, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        start_clock("assign", "PT1H", cn(), datetime(2025, 3, 3, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        start_clock("assign", "PT1H", cn(), sh(2025, 3, 3, 10)).stop(datetime(2025, 3, 3, 11))


def test_a_stored_clock_in_an_impossible_state_is_refused() -> None:
    clock = start_clock("assign", "PT1H", cn(), sh(2025, 3, 3, 10))
    with pytest.raises(ValueError, match="inconsistent running clock"):
        replace(clock, running_since=None)
    with pytest.raises(ValueError, match="inconsistent met clock"):
        replace(clock, state=ClockState.MET)


# -- warning and breach --------------------------------------------------------------------------


def test_warning_comes_at_80_percent_of_working_time_not_of_wall_clock_time() -> None:
    calendar = cn()
    # 4 h from Mon 2025-03-03 10:00: 10–12, lunch, 13–15 -> due 15:00. 80 % = 3 h 12 min of
    # working time: 10–12 (2 h) + 13:00–14:12 -> 14:12 (wall-clock 80 % would be 14:00).
    clock = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10))
    assert clock.due_at == sh(2025, 3, 3, 15)
    assert clock.next_check_at(calendar) == sh(2025, 3, 3, 14, 12)
    assert clock.tick(sh(2025, 3, 3, 14, 12) - MICROSECOND, calendar) == (clock, [])
    warned, signals = clock.tick(sh(2025, 3, 3, 14, 12), calendar)
    assert signals == [WARNING]
    assert warned.warned
    assert warned.state is ClockState.RUNNING
    assert warned.next_check_at(calendar) == sh(2025, 3, 3, 15)
    assert warned.tick(sh(2025, 3, 3, 14, 30), calendar) == (warned, [])  # warns once


def test_breach_comes_at_the_due_time_and_not_a_microsecond_earlier() -> None:
    calendar = cn()
    clock, _ = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10)).tick(sh(2025, 3, 3, 14, 12), calendar)
    assert clock.tick(sh(2025, 3, 3, 15) - MICROSECOND, calendar) == (clock, [])
    breached, signals = clock.tick(sh(2025, 3, 3, 15), calendar)
    assert signals == [BREACHED]
    assert breached.state is ClockState.BREACHED
    assert breached.next_check_at(calendar) is None
    assert breached.tick(sh(2025, 3, 3, 16), calendar) == (breached, [])  # breaches once


def test_after_a_long_outage_one_tick_warns_then_breaches_once_each() -> None:
    calendar = cn()
    # 2 h from Mon 2025-03-03 10:00: warning due 11:36, breach 12:00; the scheduler is back at 14:00.
    clock = start_clock("assign", "PT2H", calendar, sh(2025, 3, 3, 10))
    ticked, signals = clock.tick(sh(2025, 3, 3, 14), calendar)
    assert signals == [WARNING, BREACHED]
    assert ticked.state is ClockState.BREACHED
    assert ticked.tick(sh(2025, 3, 3, 14, 5), calendar) == (ticked, [])
    # Overdue by 1 working hour at 14:00 (lunch does not count).
    assert ticked.remaining_at(sh(2025, 3, 3, 14), calendar) == -HOUR


def test_a_custom_warning_ratio_warns_at_half_time_before_lunch() -> None:
    calendar = cn()
    clock = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10))
    # Half of 4 h is spent at 12:00, closing time before lunch.
    assert clock.next_check_at(calendar, warning_ratio=0.5) == sh(2025, 3, 3, 12)
    assert clock.tick(sh(2025, 3, 3, 12, 30), calendar, warning_ratio=0.5)[1] == [WARNING]
    with pytest.raises(ValueError, match="warning_ratio"):
        clock.tick(sh(2025, 3, 3, 12), calendar, warning_ratio=1.5)


def test_a_breach_always_comes_with_its_warning_even_if_the_calendar_changed_meanwhile() -> None:
    # 8 h from Mon 2025-03-03 10:00 -> due Tue 09:00 + 1 h = Tue 10:00. The office then declares
    # Monday a day off (typhoon): by Tue 10:00 only 1 working hour is spent, but the due time
    # the requester was given stands, and the breach is announced with its warning.
    clock = start_clock("resolve", "PT8H", cn(), sh(2025, 3, 3, 10))
    assert clock.due_at == sh(2025, 3, 4, 10)
    path = CALENDARS / "cn-workdays.toml"
    typhoon = '\n[[holidays]]\nname = "台风 Typhoon"\ndate = 2025-03-03\n'
    edited = parse_calendar(path.read_text(encoding="utf-8") + typhoon, source=path.name)
    assert clock.remaining_at(sh(2025, 3, 4, 10), edited) == 7 * HOUR
    assert clock.tick(sh(2025, 3, 4, 10), edited)[1] == [WARNING, BREACHED]


@pytest.mark.parametrize(
    ("target", "calendar_name", "start"),
    [
        ("PT15M", "cn-workdays", sh(2025, 1, 24, 17, 50)),  # into the make-up Sunday
        ("P3D", "cn-workdays", sh(2025, 1, 24, 17)),
        ("EOD", "cn-workdays", sh(2025, 3, 3, 12, 30)),
        ("PT8H", "cn-workdays", sh(2025, 9, 30, 16)),  # across the 2025 golden week
        ("PT30M", "24x7", sh(2025, 1, 28, 23, 50)),
        ("P1D", "24x7", sh(2025, 3, 3, 10)),
    ],
)
def test_the_scheduler_woken_at_next_check_at_always_finds_something_and_never_earlier(
    target: str, calendar_name: str, start: datetime
) -> None:
    calendar = shipped(calendar_name)
    clock = start_clock("c", target, calendar, start)
    said: list[ClockSignal] = []
    while (at := clock.next_check_at(calendar)) is not None:
        assert clock.tick(at - MICROSECOND, calendar) == (clock, [])
        clock, signals = clock.tick(at, calendar)
        assert signals
        said += signals
    assert said == [WARNING, BREACHED]


# -- pausing -------------------------------------------------------------------------------------


def test_paused_friday_afternoon_resumed_monday_morning_is_due_an_hour_later() -> None:
    calendar = cn()
    # 4 h from Fri 2025-03-07 14:00 -> due 18:00. Paused at 17:00 with 1 working hour left.
    clock = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 7, 14))
    paused = clock.pause(sh(2025, 3, 7, 17), calendar)
    assert paused.state is ClockState.PAUSED
    assert paused.remaining == HOUR
    assert paused.due_at == sh(2025, 3, 7, 18)  # as it stood when paused, for information
    assert (paused.paused_at, paused.running_since) == (sh(2025, 3, 7, 17), None)
    assert paused.next_check_at(calendar) is None
    assert paused.tick(sh(2025, 3, 8, 12), calendar) == (paused, [])  # past the old due: no breach
    assert paused.remaining_at(sh(2025, 3, 9, 12), calendar) == HOUR

    resumed = paused.resume(sh(2025, 3, 10, 10), calendar)
    assert resumed.state is ClockState.RUNNING
    assert resumed.due_at == sh(2025, 3, 10, 11)
    assert (resumed.running_since, resumed.paused_at) == (sh(2025, 3, 10, 10), None)
    # The warning still comes when 80 % of the 4 h is spent: 48 min left, 12 min after resuming.
    assert resumed.next_check_at(calendar) == sh(2025, 3, 10, 10, 12)


def test_paused_over_spring_festival_the_due_time_moves_by_exactly_the_paused_working_time() -> None:
    calendar = cn()
    # P2 3 working days from Thu 2025-01-23 15:00: Fri 24 (1), Sun 26 make-up (2), Mon 27 (3).
    clock = start_clock("resolve", "P3D", calendar, sh(2025, 1, 23, 15))
    assert clock.due_at == sh(2025, 1, 27, 15)
    # Waiting for the requester from Fri 24 16:00: spent Thu 15–18 + Fri 09–12, 13–16 = 9 h.
    paused = clock.pause(sh(2025, 1, 24, 16), calendar)
    assert paused.remaining == 15 * HOUR
    # Supplemented Thu Feb 6 14:00: 14–18 (4 h), Fri 7 (8 h), make-up Sat 8 09–12 (3 h).
    resumed = paused.resume(sh(2025, 2, 6, 14), calendar)
    assert resumed.due_at == sh(2025, 2, 8, 12)
    paused_for = calendar.working_time_between(sh(2025, 1, 24, 16), sh(2025, 2, 6, 14))
    assert paused_for == 30 * HOUR  # Fri 2 h, Sun 26, Mon 27, Wed Feb 5 8 h each, Thu 4 h
    assert calendar.working_time_between(clock.due_at, resumed.due_at) == paused_for


def test_pause_and_resume_are_idempotent() -> None:
    calendar = cn()
    clock = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10))
    assert clock.resume(sh(2025, 3, 3, 11), calendar) is clock
    paused = clock.pause(sh(2025, 3, 3, 11), calendar)
    assert paused.pause(sh(2025, 3, 3, 14), calendar) is paused  # still paused since 11:00
    resumed = paused.resume(sh(2025, 3, 3, 14), calendar)
    assert resumed.resume(sh(2025, 3, 3, 15), calendar) is resumed
    assert resumed.due_at == sh(2025, 3, 3, 17)  # 3 h left from 14:00
    met = resumed.stop(sh(2025, 3, 3, 16))
    assert met.pause(sh(2025, 3, 3, 17), calendar) is met
    assert met.resume(sh(2025, 3, 3, 17), calendar) is met


def test_resumed_with_less_left_than_the_warning_threshold_it_warns_at_once() -> None:
    calendar = cn()
    # 1 h from 10:00, paused at 10:55 before any tick: 5 min left, below the 12 min threshold.
    clock = start_clock("assign", "PT1H", calendar, sh(2025, 3, 3, 10))
    resumed = clock.pause(sh(2025, 3, 3, 10, 55), calendar).resume(sh(2025, 3, 3, 14), calendar)
    assert resumed.due_at == sh(2025, 3, 3, 14, 5)
    assert resumed.next_check_at(calendar) == sh(2025, 3, 3, 14)
    assert resumed.tick(sh(2025, 3, 3, 14), calendar)[1] == [WARNING]


def test_a_clock_already_past_due_cannot_be_paused_out_of_its_breach() -> None:
    calendar = cn()
    # Due 11:00; the requester is asked for information at 11:30, before the scheduler ticked.
    clock = start_clock("assign", "PT1H", calendar, sh(2025, 3, 3, 10))
    assert clock.pause(sh(2025, 3, 3, 11, 30), calendar) is clock
    assert clock.tick(sh(2025, 3, 3, 11, 30), calendar)[1] == [WARNING, BREACHED]


def test_a_breached_clock_ignores_pause_and_resume() -> None:
    calendar = cn()
    breached, _ = start_clock("assign", "PT1H", calendar, sh(2025, 3, 3, 10)).tick(sh(2025, 3, 3, 11), calendar)
    assert breached.pause(sh(2025, 3, 3, 11, 30), calendar) is breached
    assert breached.resume(sh(2025, 3, 3, 11, 30), calendar) is breached


# -- stopping and cancelling ---------------------------------------------------------------------


def test_resolved_in_time_the_clock_is_met_and_shows_the_time_to_spare() -> None:
    calendar = cn()
    # 4 h from 10:00, resolved 13:30: spent 10–12 + 13:00–13:30 = 2.5 h, 1.5 h to spare.
    met = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10)).stop(sh(2025, 3, 3, 13, 30))
    assert met.state is ClockState.MET
    assert met.stopped_at == sh(2025, 3, 3, 13, 30)
    assert met.remaining_at(sh(2025, 3, 4, 17), calendar) == timedelta(hours=1.5)
    assert met.next_check_at(calendar) is None
    assert met.tick(sh(2025, 3, 4, 17), calendar) == (met, [])
    assert met.stop(sh(2025, 3, 4, 9)) is met
    assert met.cancel(sh(2025, 3, 4, 9)) is met


def test_resolved_after_the_breach_stays_breached_and_records_when() -> None:
    calendar = cn()
    breached, _ = start_clock("assign", "PT2H", calendar, sh(2025, 3, 3, 10)).tick(sh(2025, 3, 3, 12), calendar)
    resolved = breached.stop(sh(2025, 3, 3, 14, 30))
    assert resolved.state is ClockState.BREACHED
    assert resolved.stopped_at == sh(2025, 3, 3, 14, 30)
    # Overdue 13:00–14:30 in working time; frozen once resolved.
    assert resolved.remaining_at(sh(2025, 3, 5, 10), calendar) == timedelta(hours=-1.5)
    assert resolved.stop(sh(2025, 3, 3, 15)) is resolved


def test_resolved_past_due_before_the_scheduler_ticked_is_still_a_breach() -> None:
    clock = start_clock("assign", "PT1H", cn(), sh(2025, 3, 3, 10))
    assert clock.stop(sh(2025, 3, 3, 11) - MICROSECOND).state is ClockState.MET
    assert clock.stop(sh(2025, 3, 3, 11)).state is ClockState.BREACHED


def test_a_paused_clock_stopped_after_its_old_due_time_is_met() -> None:
    calendar = cn()
    paused = start_clock("resolve", "PT1H", calendar, sh(2025, 3, 3, 10)).pause(sh(2025, 3, 3, 10, 30), calendar)
    met = paused.stop(sh(2025, 3, 4, 10))
    assert met.state is ClockState.MET
    assert met.remaining_at(sh(2025, 3, 5, 10), calendar) == 30 * MINUTE


def test_cancelled_clocks_say_nothing_more_but_a_breach_is_not_undone() -> None:
    calendar = cn()
    clock = start_clock("resolve", "PT4H", calendar, sh(2025, 3, 3, 10))
    cancelled = clock.cancel(sh(2025, 3, 3, 11))
    assert cancelled.state is ClockState.CANCELLED
    assert cancelled.stopped_at == sh(2025, 3, 3, 11)
    assert cancelled.next_check_at(calendar) is None
    assert cancelled.tick(sh(2025, 3, 4, 10), calendar) == (cancelled, [])
    breached, _ = clock.tick(sh(2025, 3, 3, 15), calendar)
    withdrawn = breached.cancel(sh(2025, 3, 3, 16))
    assert (withdrawn.state, withdrawn.stopped_at) == (ClockState.BREACHED, sh(2025, 3, 3, 16))


# -- diagram properties --------------------------------------------------------------------------


def test_the_readme_example_starts_the_assign_clock() -> None:
    assert parse_clock_properties({"sla.start": "assign:assign_within"}) == [
        ClockCommand(ClockAction.START, "assign", "assign_within")
    ]


def test_an_element_stops_one_clock_and_starts_others_ignoring_other_properties() -> None:
    commands = parse_clock_properties(
        {
            "sla.start": "resolve:resolve_within, first_response : first_response_within",
            "fourEyes.excludePerformerOf": "Task_Implement",
            "sla.stop": "assign",
        }
    )
    assert commands == [
        ClockCommand(ClockAction.STOP, "assign"),
        ClockCommand(ClockAction.START, "resolve", "resolve_within"),
        ClockCommand(ClockAction.START, "first_response", "first_response_within"),
    ]
    assert commands[1].action == "start"  # callers may compare with the property's text


def test_pause_resume_and_restart_commands() -> None:
    assert parse_clock_properties({"sla.pause": "resolve, first_response"}) == [
        ClockCommand(ClockAction.PAUSE, "resolve"),
        ClockCommand(ClockAction.PAUSE, "first_response"),
    ]
    assert parse_clock_properties({"sla.resume": "resolve", "sla.cancel": "tier2"}) == [
        ClockCommand(ClockAction.CANCEL, "tier2"),
        ClockCommand(ClockAction.RESUME, "resolve"),
    ]
    # A re-escalation restarts tier-2's response clock: stop first, then start.
    assert parse_clock_properties({"sla.start": "tier2:tier2_within", "sla.stop": "tier2"}) == [
        ClockCommand(ClockAction.STOP, "tier2"),
        ClockCommand(ClockAction.START, "tier2", "tier2_within"),
    ]
    assert parse_clock_properties({"fourEyes.excludePerformerOf": "Task_1"}) == []


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (
            {"sla.start": "assign"},
            """sla.start = 'assign': 'assign' is not clock:variable, e.g. "assign:assign_within\"""",
        ),
        ({"sla.start": "assign:"}, "sla.start = 'assign:': '' is not a process variable name"),
        ({"sla.start": "assign:_within"}, "sla.start = 'assign:_within': '_within' is not a process variable name"),
        ({"sla.start": "assign:assign within"}, "'assign within' is not a process variable name"),
        ({"sla.start": ":assign_within"}, "sla.start = ':assign_within': '' is not a clock name"),
        ({"sla.start": "resolve:a, resolve:b"}, "sla.start = 'resolve:a, resolve:b': clock 'resolve' is started twice"),
        ({"sla.pause": ""}, "sla.pause = '': expected comma-separated entries, found an empty one"),
        ({"sla.pause": "resolve,,assign"}, "sla.pause = 'resolve,,assign': expected comma-separated entries"),
        ({"sla.stop": "assign, assign"}, "sla.stop = 'assign, assign': 'assign' is listed twice"),
        ({"sla.stop": "sla.breached.assign"}, "sla.stop = 'sla.breached.assign': 'sla.breached.assign' is not a clock"),
        (
            {"sla.pause": "resolve", "sla.resume": "resolve"},
            "sla.resume = 'resolve': clock 'resolve' is also in sla.pause",
        ),
        (
            {"sla.pause": "resolve", "sla.start": "resolve:resolve_within"},
            "sla.start = 'resolve:resolve_within': clock 'resolve' is also in sla.pause",
        ),
        ({"sla.pasue": "resolve"}, "sla.pasue: unknown SLA property (expected one of: sla.stop, sla.cancel, sla.pause"),
    ],
)
def test_malformed_clock_properties_name_the_property_and_value(properties: dict[str, str], message: str) -> None:
    with pytest.raises(SlaError) as caught:
        parse_clock_properties(properties)
    assert message in str(caught.value)
