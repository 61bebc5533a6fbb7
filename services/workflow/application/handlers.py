"""The workflow use cases: one function per command, each one transaction (state + outbox).

An instance is only ever advanced under its row lock (taken first, before any task row), so one
instance is never run by two workers at once, whatever number of replicas run.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.kit.auth import PROCESS_ADMIN, Principal
from services.workflow.application import announcements as an
from services.workflow.application.engine import (
    Advance,
    NotWaitingFor,
    ProcessEngine,
    ProcessInstanceHandle,
    combine,
)
from services.workflow.application.ports import (
    Bundle,
    BundleCompiler,
    Clock,
    Deployment,
    HistoryEntry,
    IdGenerator,
    Instance,
    InstanceQuery,
    Runtime,
    Runtimes,
    TaskQuery,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.workflow.application.progress import Actor, record_advance
from services.workflow.domain.assignment import assignment_made
from services.workflow.domain.errors import InstanceNotWaiting, NotAllowed, NotFound
from services.workflow.domain.sla import ClockSignal, SlaClock
from services.workflow.domain.tasks import Worker, WorkTask

BREACH_MESSAGE = "sla.breached.{clock}"
#: The requester's cancellation (bpmn/README.md, "Messages in"): a process it ends is cancelled, not completed.
CANCEL_MESSAGE = "ticket.cancelled"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkflowDeps:
    uow: UnitOfWorkFactory
    runtimes: Runtimes
    compiler: BundleCompiler
    default_bundle: Callable[[], Mapping[str, bytes]]
    clock: Clock
    ids: IdGenerator


@dataclass(frozen=True, slots=True)
class Deployed:
    deployment: Deployment | None  # None for a dry run
    warnings: tuple[str, ...]
    next_version: int


# -- deployments -------------------------------------------------------------------------------


async def deploy_process(
    deps: WorkflowDeps, principal: Principal, org: str, files: Mapping[str, bytes], *, dry_run: bool, description: str
) -> Deployed:
    principal.require_org(org)
    principal.require_any(PROCESS_ADMIN, action="deploying a process")
    bundle = deps.compiler.compile(files)  # raises BundleInvalid with every problem
    async with deps.uow() as uow:
        latest = await uow.deployments.latest(org)
        next_version = (latest.version if latest else 0) + 1
        if dry_run:
            return Deployed(None, bundle.warnings, next_version)
        deployment = await _store(uow, deps, org, bundle, principal.subject, description, next_version)
        await uow.commit()
    return Deployed(deployment, bundle.warnings, deployment.version + 1)


async def _store(
    uow: UnitOfWork, deps: WorkflowDeps, org: str, bundle: Bundle, by: str, description: str, version: int
) -> Deployment:
    deployment = Deployment(
        deployment_id=deps.ids.new_id(),
        organization=org,
        version=version,
        checksum=bundle.checksum,
        name=bundle.name,
        main_process=bundle.main_process,
        process_ids=bundle.process_ids,
        description=description,
        deployed_by=by,
        deployed_at=deps.clock.now(),
        files=tuple(sorted(bundle.files)),
    )
    await uow.deployments.add(deployment, bundle.files)
    return deployment


async def list_deployments(
    deps: WorkflowDeps, principal: Principal, org: str, after_version: int | None, limit: int
) -> list[Deployment]:
    principal.require_org(org)
    async with deps.uow() as uow:
        return await uow.deployments.list(org, after_version, limit)


async def _deployment_for_new_instance(uow: UnitOfWork, deps: WorkflowDeps, org: str) -> Deployment:
    """The organisation's latest version; the shipped default bundle becomes version 1 of an
    organisation that never deployed one."""
    latest = await uow.deployments.latest(org)
    if latest is not None:
        return latest
    bundle = deps.compiler.compile(deps.default_bundle())
    return await _store(uow, deps, org, bundle, "system", "default bundle (bpmn/)", 1)


async def _runtime(uow: UnitOfWork, deps: WorkflowDeps, deployment_id: str) -> Runtime:
    if (cached := deps.runtimes.cached(deployment_id)) is not None:
        return cached  # deployments never change once stored
    deployment = await uow.deployments.get(deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return await deps.runtimes.runtime(deployment, lambda: uow.deployments.files(deployment_id))


# -- instances ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketStart:
    organization: str
    ticket_number: str
    variables: Mapping[str, Any]
    actor: Actor


async def start_instance(deps: WorkflowDeps, start: TicketStart) -> bool:
    """One instance per ticket: a second start (redelivery, duplicate) does nothing. True if started."""
    return bool(await start_instances(deps, [start]))


async def start_instances(deps: WorkflowDeps, starts: Sequence[TicketStart]) -> list[str]:
    """Start the tickets' instances in one transaction (a burst of submissions is stored together:
    one statement per table instead of one per ticket). Tickets that already have an instance,
    and repeats within `starts`, start nothing. Returns the ticket numbers started."""
    async with deps.uow() as uow:
        existing = await uow.instances.existing([s.ticket_number for s in starts])
        deployments: dict[str, Deployment] = {}
        started: list[str] = []
        for start in starts:
            if start.ticket_number in existing:
                continue
            existing.add(start.ticket_number)
            if start.organization not in deployments:
                deployments[start.organization] = await _deployment_for_new_instance(uow, deps, start.organization)
            await _start(uow, deps, deployments[start.organization], start)
            started.append(start.ticket_number)
        await uow.commit()
    return started


async def _start(uow: UnitOfWork, deps: WorkflowDeps, deployment: Deployment, start: TicketStart) -> None:
    runtime = await deps.runtimes.runtime(deployment, lambda: uow.deployments.files(deployment.deployment_id))
    now = deps.clock.now()
    handle, advance = runtime.engine.start(start.variables)
    instance = Instance(
        ticket_number=start.ticket_number,
        organization=start.organization,
        deployment_id=deployment.deployment_id,
        process_id=deployment.main_process,
        state="running",
        engine_state=b"",
        revision=0,
        started_at=now,
    )
    version = f"version {deployment.version}"
    started = HistoryEntry(now, start.actor.subject, start.actor.role, "started", deployment.main_process, version)
    await uow.history.add(start.ticket_number, [started])
    said = await record_advance(uow, runtime, instance, advance, now=now, new_ids=deps.ids)
    instance.engine_state = handle.dump()
    await uow.instances.add(instance)
    _announce(uow, instance, start.actor, now, said)


async def _locked(uow: UnitOfWork, ticket_number: str, org: str | None = None) -> Instance:
    instance = await uow.instances.get(ticket_number, for_update=True)
    if instance is None or (org is not None and instance.organization != org):
        raise NotFound(f"no process instance for ticket {ticket_number or '(empty)'}")
    return instance


async def _advance(
    uow: UnitOfWork,
    deps: WorkflowDeps,
    instance: Instance,
    actor: Actor,
    operate: Callable[[ProcessEngine, ProcessInstanceHandle], Advance],
    before: list[an.Announcement] | None = None,
    clocks: list[SlaClock] | None = None,
    end_state: str = "completed",
) -> None:
    """Load the instance's engine state, run `operate`, record what happened, save, announce."""
    runtime = await _runtime(uow, deps, instance.deployment_id)
    handle = runtime.engine.load(instance.engine_state)
    now = deps.clock.now()
    advance = operate(runtime.engine, handle)
    said = list(before or []) + await record_advance(
        uow,
        runtime,
        instance,
        advance,
        now=now,
        new_ids=deps.ids,
        clocks_in_hand=clocks,
        end_state=end_state,
    )
    instance.engine_state = handle.dump()
    instance.revision += 1
    await uow.instances.save(instance)
    _announce(uow, instance, actor, now, said)


def _announce(uow: UnitOfWork, instance: Instance, actor: Actor, at: datetime, said: list[an.Announcement]) -> None:
    """Stage `said` in order: `actor`'s own actions under them, what the process did by itself
    under the system (announcements.py, "Who did it")."""
    for personal, run in itertools.groupby(said, key=an.is_personal):
        subject, role = (actor.subject, actor.role) if personal else an.SYSTEM
        uow.emit(an.Envelope(instance.organization, instance.ticket_number, subject, role, at, tuple(run)))


async def correlate_message(
    deps: WorkflowDeps,
    actor: Actor,
    org: str,
    name: str,
    ticket_number: str,
    variables: Mapping[str, Any],
    message_id: str,
    *,
    required: bool = True,
) -> bool:
    """Deliver message `name` to the ticket's instance. A message id seen before does nothing.
    `required=False` (requester actions from intake): a process not waiting for it ignores it."""
    async with deps.uow() as uow:
        if message_id and await uow.messages.seen(org, message_id) is not None:
            return False
        instance = await _locked(uow, ticket_number, org)
        if instance.state != "running":
            if required:
                raise InstanceNotWaiting(f"the process of ticket {ticket_number} is {instance.state}")
            return False
        runtime = await _runtime(uow, deps, instance.deployment_id)
        handle = runtime.engine.load(instance.engine_state)
        try:
            advance = runtime.engine.deliver_message(handle, name, variables)
        except NotWaitingFor as exc:
            if required:
                raise InstanceNotWaiting(str(exc)) from exc
            return False
        now = deps.clock.now()
        ended = "cancelled" if name == CANCEL_MESSAGE else "completed"
        # The person's action, then what the process did by itself in answer (the system's).
        await uow.history.add(ticket_number, [HistoryEntry(now, actor.subject, actor.role, "message", "", name)])
        said = await record_advance(uow, runtime, instance, advance, now=now, new_ids=deps.ids, end_state=ended)
        instance.engine_state = handle.dump()
        instance.revision += 1
        await uow.instances.save(instance)
        _announce(uow, instance, actor, now, said)
        if message_id:
            await uow.messages.record(org, message_id, name, ticket_number, now)
        await uow.commit()
    return True


async def cancel_instance(deps: WorkflowDeps, actor: Actor, org: str, ticket_number: str, reason: str) -> Instance:
    async with deps.uow() as uow:
        instance = await _locked(uow, ticket_number, org)
        if instance.state in ("completed", "cancelled"):
            return instance
        await uow.history.add(
            ticket_number, [HistoryEntry(deps.clock.now(), actor.subject, actor.role, "cancelled", "", reason)]
        )
        await _advance(uow, deps, instance, actor, lambda engine, handle: engine.cancel(handle), end_state="cancelled")
        instance.state, instance.ended_at, instance.wake_at = "cancelled", deps.clock.now(), None
        await uow.instances.save(instance)
        await uow.commit()
        return instance


async def resolve_incident(
    deps: WorkflowDeps,
    actor: Actor,
    org: str,
    ticket_number: str,
    incident_id: str,
    variables: Mapping[str, Any],
    comment: str,
) -> None:
    """Mark an incident resolved. A blocking one runs the failed steps again (every one: a retry
    resolves all the blocking incidents it retries), `variables` added to their data; a step that
    fails again is a new incident."""
    async with deps.uow() as uow:
        instance = await _locked(uow, ticket_number, org)
        incident = next((x for x in instance.incidents if x.incident_id == incident_id), None)
        if incident is None:
            raise NotFound(f"ticket {ticket_number} has no incident {incident_id or '(empty id)'}")
        if incident.resolved:
            raise InstanceNotWaiting(f"incident {incident_id} of ticket {ticket_number} is resolved already")
        retry = incident.blocking and instance.state == "incident"
        instance.incidents = [
            replace(x, resolved=True) if x is incident or (retry and x.blocking) else x for x in instance.incidents
        ]
        now = deps.clock.now()
        detail = "; ".join(part for part in (comment.strip(), _variables_set(variables)) if part)
        entry = HistoryEntry(now, actor.subject, actor.role, "incident.resolved", incident.element_id, detail)
        await uow.history.add(ticket_number, [entry])
        if retry:
            instance.state = "running"
            try:
                await _advance(uow, deps, instance, actor, lambda engine, handle: engine.retry(handle, variables))
            except NotWaitingFor as exc:  # nothing stored: the transaction rolls back
                raise InstanceNotWaiting(f"ticket {ticket_number}: {exc}; cancel its process instead") from exc
        else:
            await uow.instances.save(instance)
        await uow.commit()


def _variables_set(variables: Mapping[str, Any]) -> str:
    return f"set {', '.join(sorted(variables))}" if variables else ""


async def wake_due(deps: WorkflowDeps, limit: int = 50) -> list[float]:
    """Advance instances whose timers or SLA checks are due, a batch per transaction; rows another
    worker holds are skipped (FOR UPDATE SKIP LOCKED). If the batch fails as a whole, each instance
    is tried alone, so one bad instance holds up no other. Returns, per instance woken, how late
    (seconds after its due time) it was woken."""
    now = deps.clock.now()
    try:
        async with deps.uow() as uow:
            due = await uow.instances.claim_due(now, limit)
            for instance in due:
                await _wake(uow, deps, instance)
            await uow.commit()
        return [_late(deps, i) for i in due]
    except Exception as exc:
        log.warning("waking a batch failed (%r); waking one by one", exc)
    async with deps.uow() as uow:
        candidates = [i.ticket_number for i in await uow.instances.claim_due(now, limit)]
    lateness: list[float] = []
    for ticket_number in candidates:
        try:
            async with deps.uow() as uow:
                one = await uow.instances.get(ticket_number, for_update=True, skip_locked=True)
                if one is None or one.wake_at is None or one.wake_at > now or one.state != "running":
                    continue  # another worker has it, or it moved on
                await _wake(uow, deps, one)
                await uow.commit()
                lateness.append(_late(deps, one))
        except Exception:
            log.exception("waking %s failed; it stays due and is tried again", ticket_number)
    return lateness


def _late(deps: WorkflowDeps, instance: Instance) -> float:
    due = instance.woken_for or deps.clock.now()
    return (deps.clock.now() - due).total_seconds()


async def next_wake_up(deps: WorkflowDeps) -> datetime | None:
    """The earliest time any running instance needs waking."""
    async with deps.uow() as uow:
        return await uow.instances.earliest_wake_up()


async def _wake(uow: UnitOfWork, deps: WorkflowDeps, instance: Instance) -> None:
    instance.woken_for = instance.wake_at
    runtime = await _runtime(uow, deps, instance.deployment_id)
    now = deps.clock.now()
    said: list[an.Announcement] = []
    breached: list[str] = []
    clocks = await uow.clocks.of(instance.ticket_number)
    ticked = []
    for clock in clocks:
        calendar = runtime.calendars.get(clock.calendar)
        if calendar is None:
            ticked.append(clock)
            continue
        clock, signals = clock.tick(now, calendar)
        ticked.append(clock)
        for signal in signals:
            if signal is ClockSignal.WARNING:
                remaining = int(clock.remaining_at(now, calendar).total_seconds())
                said.append(an.SlaWarning(clock, remaining))
            elif signal is ClockSignal.BREACHED:
                said.append(an.SlaBreached(clock, now))
                breached.append(clock.name)

    def operate(engine: ProcessEngine, handle: ProcessInstanceHandle) -> Advance:
        done = Advance()
        for name in breached:
            try:  # a diagram that catches the breach escalates; one that does not just records it
                message = BREACH_MESSAGE.format(clock=name)
                done = combine(done, engine.deliver_message(handle, message, {"breached_clock": name}))
            except NotWaitingFor:
                pass
        return combine(done, engine.wake(handle))

    await _advance(uow, deps, instance, Actor(*an.SYSTEM), operate, before=said, clocks=ticked)


# -- tasks -------------------------------------------------------------------------------------


def worker_of(principal: Principal) -> Worker:
    return Worker(principal.subject, frozenset(principal.roles), frozenset(principal.groups))


async def list_tasks(deps: WorkflowDeps, principal: Principal, query: TaskQuery) -> list[WorkTask]:
    principal.require_org(query.organization)
    async with deps.uow() as uow:
        return await uow.tasks.query(query)


async def _task_and_instance(uow: UnitOfWork, principal: Principal, task_id: str) -> tuple[WorkTask, Instance]:
    peek = await uow.tasks.get(task_id)
    if peek is None or peek.organization != principal.org:
        raise NotFound(f"task {task_id or '(empty id)'} not found")
    instance = await _locked(uow, peek.ticket_number)  # instance first, then the task: one lock order
    task = await uow.tasks.get(task_id, for_update=True)
    assert task is not None
    return task, instance


async def claim_task(deps: WorkflowDeps, principal: Principal, task_id: str, assignee: str = "") -> WorkTask:
    """The caller claims the task, or a team lead gives it to `assignee`."""
    async with deps.uow() as uow:
        task, instance = await _task_and_instance(uow, principal, task_id)
        claimed = task.claim(worker_of(principal), for_subject=assignee)
        await uow.tasks.save(claimed)
        now = deps.clock.now()
        actor = Actor(principal.subject, principal.primary_role)
        detail = task.name if claimed.assignee == principal.subject else f"{task.name} → {claimed.assignee}"
        await uow.history.add(
            task.ticket_number,
            [HistoryEntry(now, actor.subject, actor.role, "task.claimed", task.element_id, detail)],
        )
        _announce(uow, instance, actor, now, [an.TaskClaimed(claimed)])
        await uow.commit()
    return claimed


async def complete_task(
    deps: WorkflowDeps, principal: Principal, task_id: str, variables: Mapping[str, Any], request_id: str = ""
) -> WorkTask:
    """Complete the task with its form's values; `request_id` makes a retry of the same request
    answer as the first did, completing nothing twice."""
    worker = worker_of(principal)
    async with deps.uow() as uow:
        if request_id:  # a retry is answered from the task as it stands, before any lock is taken
            seen = await uow.tasks.get(task_id)
            if seen is not None and seen.organization == principal.org and seen.is_retry(worker, variables, request_id):
                return seen
        task, instance = await _task_and_instance(uow, principal, task_id)
        excluded = await uow.tasks.performers(task.ticket_number, task.exclude_performers_of)
        done, cleaned = task.complete(worker, variables, excluded, deps.clock.now(), request_id)
        await uow.tasks.save(done)
        actor, now = Actor(principal.subject, principal.primary_role), deps.clock.now()
        history = [HistoryEntry(now, actor.subject, actor.role, "task.completed", task.element_id, task.name)]
        said: list[an.Announcement] = [an.TaskCompleted(done)]
        if (assigned := assignment_made(cleaned, instance.variables)) is not None:
            said.append(an.TicketAssigned(assigned))  # before the tasks it opens for the new handler
            who = ", ".join((assigned.assignee, *assigned.co_handlers))
            history.append(HistoryEntry(now, actor.subject, actor.role, "ticket.assigned", task.element_id, who))
        await uow.history.add(task.ticket_number, history)
        data = {**cleaned, f"{task.element_id}_completed_by": principal.subject, "completed_by": principal.subject}
        await _advance(
            uow,
            deps,
            instance,
            actor,
            lambda engine, handle: engine.complete_task(handle, task_id, data),
            before=said,
        )
        await uow.commit()
    return done


# -- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance: Instance
    deployment_version: int
    history: list[HistoryEntry]
    clocks: list[Any]


async def get_instance(deps: WorkflowDeps, principal: Principal, ticket_number: str) -> InstanceView:
    async with deps.uow(read_only=True) as uow:
        instance = await uow.instances.get(ticket_number)
        if instance is None or instance.organization != principal.org:
            raise NotFound(f"no process instance for ticket {ticket_number or '(empty)'}")
        _may_see_instances(principal)
        deployment = await uow.deployments.get(instance.deployment_id)
        history = await uow.history.of(ticket_number)
        clocks = await uow.clocks.of(ticket_number)
    return InstanceView(instance, deployment.version if deployment else 0, history, clocks)


async def list_instances(deps: WorkflowDeps, principal: Principal, query: InstanceQuery) -> list[InstanceView]:
    """The instances `query` selects, most recently started first, each without its variables,
    history and SLA clocks."""
    principal.require_org(query.organization)
    _may_see_instances(principal)
    async with deps.uow(read_only=True) as uow:
        found = await uow.instances.summaries(query)
    return [InstanceView(s.instance, s.deployment_version, [], []) for s in found]


def _may_see_instances(principal: Principal) -> None:
    if principal.has_any("requester") and not principal.has_any("agent", "team_lead", "process_admin"):
        raise NotAllowed("a requester sees the ticket's progress through intake's GetTicket")


__all__ = [
    "Deployed",
    "InstanceView",
    "TicketStart",
    "WorkflowDeps",
    "cancel_instance",
    "claim_task",
    "complete_task",
    "correlate_message",
    "deploy_process",
    "get_instance",
    "list_deployments",
    "list_instances",
    "list_tasks",
    "start_instance",
    "start_instances",
    "wake_due",
]
