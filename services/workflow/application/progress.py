"""Acting on what the engine did: every operation on an instance ends here.

`record_advance` turns an `Advance` into the service's state and announcements, inside the
caller's unit of work: user tasks opened and withdrawn, SLA clocks started / paused / resumed /
stopped by the properties of the steps entered, thrown messages, routing, incidents, the end of
the instance, and the instance's next wake-up time (earliest timer or SLA check).

All of it is what the process did by itself, so its history entries are the system's
(announcements.SYSTEM), whoever's action set the engine going: the caller records that action
(task completed, message received, instance started) under the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.workflow.application import announcements as an
from services.workflow.application.announcements import SYSTEM
from services.workflow.application.engine import Advance, OpenedTask
from services.workflow.application.ports import HistoryEntry, Incident, Instance, Runtime, UnitOfWork
from services.workflow.domain.sla import ClockState, SlaClock, SlaError, parse_clock_properties, start_clock
from services.workflow.domain.tasks import TaskState, WorkTask

CLASSIFIED = "ticket.classified"
ROUTING_VARIABLES = ("priority", "category", "team", "candidate_group", "candidate_groups", "calendar")


@dataclass(frozen=True, slots=True)
class Actor:
    subject: str
    role: str


async def record_advance(
    uow: UnitOfWork,
    runtime: Runtime,
    instance: Instance,
    advance: Advance,
    *,
    now: datetime,
    new_ids: Any,
    clocks_in_hand: list[SlaClock] | None = None,
    end_state: str = "completed",
) -> list[an.Announcement]:
    """Apply `advance` to `instance` (mutated; saved by the caller) and the other repositories.
    `clocks_in_hand`: the instance's clocks as the caller already read (and changed) them.
    `end_state`: what the instance becomes if the process finished ("cancelled" when a
    cancellation ended it)."""
    # Messages first: within one advance, a throw precedes the tasks opened after it (a classification
    # announces the routing before the assignment task appears).
    said: list[an.Announcement] = []
    history: list[HistoryEntry] = []
    variables = dict(advance.variables) or instance.variables
    instance.variables = variables
    instance.active_steps = list(advance.active)

    new = not instance.engine_state  # being created: nothing of it is stored yet, nothing to read
    if clocks_in_hand is not None:
        clocks = {c.name: c for c in clocks_in_hand}
    else:
        clocks = {} if new else {c.name: c for c in await uow.clocks.of(instance.ticket_number)}
    if advance.entered:
        # One entry for the path the engine took (not one per gateway and event it passed).
        path = " → ".join(step.name or step.element_id for step in advance.entered)
        history.append(HistoryEntry(now, *SYSTEM, "path", advance.entered[-1].element_id, path))
    for step in advance.entered:
        _apply_clock_properties(step.element_id, step.properties, clocks, runtime, variables, now, instance)

    for thrown in advance.thrown:
        matched: tuple[Mapping[str, Any], ...] = ()
        if thrown.name == CLASSIFIED:
            instance.routing = {k: variables[k] for k in ROUTING_VARIABLES if k in variables}
            matched = tuple(variables.get("matched_rules", ()) or ())
            instance.routing["matched_rules"] = list(matched)
        said.append(an.Thrown(thrown, matched))
        history.append(HistoryEntry(now, *SYSTEM, thrown.name, thrown.element_id, ""))

    for opened in advance.opened:
        task = await _open_task(uow, instance, opened, variables, now, new_ids, new=new)
        said.append(an.TaskCreated(task))
        history.append(HistoryEntry(now, *SYSTEM, "task.created", task.element_id, _task_detail(task)))
    for task_id in advance.withdrawn:
        gone = await uow.tasks.get(task_id, for_update=True)
        if gone is not None and gone.state in (TaskState.OPEN, TaskState.CLAIMED):
            await uow.tasks.save(replace(gone, state=TaskState.CANCELLED))
            history.append(HistoryEntry(now, *SYSTEM, "task.withdrawn", gone.element_id, gone.name))

    if advance.incident is not None:
        instance.incidents.append(
            Incident(new_ids.new_id(), advance.incident.element_id, advance.incident.message, now, blocking=True)
        )
        instance.state = "incident"
        history.append(
            HistoryEntry(now, *SYSTEM, "incident", advance.incident.element_id, advance.incident.message[:500])
        )
    if advance.finished:
        await _end(uow, instance, clocks, now, end_state)
        history.append(HistoryEntry(now, *SYSTEM, end_state, "", ""))

    await uow.clocks.save_all(instance.ticket_number, list(clocks.values()), new=new)
    await uow.history.add(instance.ticket_number, history)
    instance.wake_at = next_wake(advance.next_timer_at, clocks.values(), runtime, instance.state)
    return said


async def _end(uow: UnitOfWork, instance: Instance, clocks: dict[str, SlaClock], now: datetime, state: str) -> None:
    instance.state, instance.ended_at, instance.active_steps = state, now, []
    for task in await uow.tasks.open_of(instance.ticket_number):
        await uow.tasks.save(replace(task, state=TaskState.CANCELLED))
    for name, clock in list(clocks.items()):
        if clock.state in (ClockState.RUNNING, ClockState.PAUSED):
            clocks[name] = clock.cancel(now)


def next_wake(timer_at: datetime | None, clocks: Any, runtime: Runtime, state: str) -> datetime | None:
    if state != "running":
        return None
    candidates = [timer_at] if timer_at is not None else []
    for clock in clocks:
        calendar = runtime.calendars.get(clock.calendar)
        if calendar is not None and (at := clock.next_check_at(calendar)) is not None:
            candidates.append(at)
    return min(candidates) if candidates else None


def _apply_clock_properties(
    element_id: str,
    properties: Mapping[str, str],
    clocks: dict[str, SlaClock],
    runtime: Runtime,
    variables: Mapping[str, Any],
    now: datetime,
    instance: Instance,
) -> None:
    try:
        commands = parse_clock_properties(properties)
    except SlaError as exc:
        instance.incidents.append(Incident(f"{element_id}:sla", element_id, str(exc), now))
        return
    for cmd in commands:
        clock = clocks.get(cmd.clock)
        calendar_name = clock.calendar if clock else str(variables.get("calendar") or runtime.default_calendar)
        calendar = runtime.calendars.get(calendar_name)
        if calendar is None:
            instance.incidents.append(
                Incident(f"{element_id}:{cmd.clock}", element_id, f"unknown calendar {calendar_name!r}", now)
            )
            continue
        try:
            if cmd.action == "start":
                if clock is not None and clock.state in (ClockState.RUNNING, ClockState.PAUSED):
                    continue  # re-entering a step (rework) keeps its clock; stop + start restarts it
                target = str(variables.get(cmd.target_variable) or "")
                clocks[cmd.clock] = start_clock(cmd.clock, target, calendar, now)
            elif clock is None:
                continue  # pausing/stopping a clock that never started: nothing to do
            elif cmd.action == "pause":
                clocks[cmd.clock] = clock.pause(now, calendar)
            elif cmd.action == "resume":
                clocks[cmd.clock] = clock.resume(now, calendar)
            elif cmd.action == "stop":
                clocks[cmd.clock] = clock.stop(now)
            elif cmd.action == "cancel":
                clocks[cmd.clock] = clock.cancel(now)
        except SlaError as exc:
            instance.incidents.append(Incident(f"{element_id}:{cmd.clock}", element_id, str(exc), now))


async def _open_task(
    uow: UnitOfWork,
    instance: Instance,
    opened: OpenedTask,
    variables: Mapping[str, Any],
    now: datetime,
    ids: Any,
    *,
    new: bool,
) -> WorkTask:
    groups = _resolve_groups(opened.candidate_groups, variables)
    excluded = set() if new else await uow.tasks.performers(instance.ticket_number, opened.exclude_performers_of)
    priority = variables.get("priority")
    task = WorkTask(
        task_id=opened.task_id,
        ticket_number=instance.ticket_number,
        organization=instance.organization,
        element_id=opened.element_id,
        name=opened.name,
        state=TaskState.CLAIMED if opened.assignee else TaskState.OPEN,
        candidate_groups=groups,
        form=opened.form,
        created_at=now,
        assignee=opened.assignee,
        exclude_performers_of=opened.exclude_performers_of,
        excluded_subjects=tuple(sorted(excluded)),
        priority=priority if priority in ("P0", "P1", "P2", "P3") else None,
    )
    await uow.tasks.add(task)
    return task


def _resolve_groups(groups: tuple[str, ...], variables: Mapping[str, Any]) -> tuple[str, ...]:
    """`${candidate_group}`-style entries name a process variable (the team DMN routed to)."""
    out: list[str] = []
    for group in groups:
        if group.startswith("${") and group.endswith("}"):
            value = variables.get(group[2:-1].strip())
            out.extend([value] if isinstance(value, str) else [str(v) for v in value or ()])
        else:
            out.append(group)
    return tuple(dict.fromkeys(g for g in out if g))


def _task_detail(task: WorkTask) -> str:
    who = task.assignee or ", ".join(task.candidate_groups) or "anyone"
    return f"{task.name} for {who}"
