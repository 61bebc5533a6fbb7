"""SQL implementations of the workflow ports (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.db import is_postgres, stored_utc, stored_utc_required
from services.workflow.adapters import tables as t
from services.workflow.application.engine import ActiveStep
from services.workflow.application.ports import (
    Deployment,
    HistoryEntry,
    Incident,
    Instance,
    InstanceQuery,
    InstanceSummary,
    TaskQuery,
)
from services.workflow.domain.sla import ClockState, SlaClock
from services.workflow.domain.tasks import FormField, TaskState, WorkTask


class Db:
    """The transaction's connection, with inserts held back and sent together (one statement per
    table, many rows) just before the next statement that could depend on them, or at COMMIT."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._pending: dict[Table, list[dict[str, Any]]] = {}

    def insert_later(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self._pending.setdefault(table, []).extend(rows)

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for table, rows in pending.items():
            await self.conn.execute(table.insert(), rows)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        await self.flush()
        return await self.conn.execute(statement, parameters)

    async def scalar(self, statement: Any) -> Any:
        await self.flush()
        return await self.conn.scalar(statement)


class SqlDeployments:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def latest(self, org: str) -> Deployment | None:
        row = (
            await self._db.execute(
                select(t.deployments)
                .where(t.deployments.c.organization == org)
                .order_by(t.deployments.c.version.desc())
                .limit(1)
            )
        ).first()
        return _deployment(row) if row else None

    async def get(self, deployment_id: str) -> Deployment | None:
        row = (
            await self._db.execute(select(t.deployments).where(t.deployments.c.deployment_id == deployment_id))
        ).first()
        return _deployment(row) if row else None

    async def files(self, deployment_id: str) -> dict[str, bytes]:
        rows = await self._db.execute(
            select(t.deployment_files.c.path, t.deployment_files.c.content).where(
                t.deployment_files.c.deployment_id == deployment_id
            )
        )
        return {path: bytes(content) for path, content in rows}

    async def add(self, deployment: Deployment, files: Mapping[str, bytes]) -> None:
        await self._db.execute(
            t.deployments.insert().values(
                deployment_id=deployment.deployment_id,
                organization=deployment.organization,
                version=deployment.version,
                checksum=deployment.checksum,
                name=deployment.name,
                main_process=deployment.main_process,
                process_ids=list(deployment.process_ids),
                description=deployment.description,
                deployed_by=deployment.deployed_by,
                deployed_at=deployment.deployed_at,
            )
        )
        await self._db.execute(
            t.deployment_files.insert(),
            [{"deployment_id": deployment.deployment_id, "path": p, "content": c} for p, c in sorted(files.items())],
        )

    async def list(self, org: str, after_version: int | None, limit: int) -> list[Deployment]:
        query = select(t.deployments).where(t.deployments.c.organization == org)
        if after_version is not None:
            query = query.where(t.deployments.c.version < after_version)
        rows = await self._db.execute(query.order_by(t.deployments.c.version.desc()).limit(limit))
        return [_deployment(r) for r in rows]


def _deployment(row: Row[Any]) -> Deployment:
    m = row._mapping
    return Deployment(
        deployment_id=m["deployment_id"],
        organization=m["organization"],
        version=m["version"],
        checksum=m["checksum"],
        name=m["name"],
        main_process=m["main_process"],
        process_ids=tuple(m["process_ids"]),
        description=m["description"],
        deployed_by=m["deployed_by"],
        deployed_at=stored_utc_required(m["deployed_at"]),
    )


class SqlInstances:
    def __init__(self, db: Db) -> None:
        self._db = db
        #: Wake-up times written in this transaction (the scheduler hears of them after COMMIT).
        self.wake_times: list[datetime] = []

    async def existing(self, ticket_numbers: Sequence[str]) -> set[str]:
        if not ticket_numbers:
            return set()
        rows = await self._db.execute(
            select(t.instances.c.ticket_number).where(t.instances.c.ticket_number.in_(list(ticket_numbers)))
        )
        return set(rows.scalars())

    async def get(self, ticket_number: str, *, for_update: bool = False, skip_locked: bool = False) -> Instance | None:
        query = select(t.instances).where(t.instances.c.ticket_number == ticket_number)
        if for_update and is_postgres(self._db.conn):
            query = query.with_for_update(skip_locked=skip_locked)
        row = (await self._db.execute(query)).first()
        return _instance(row) if row else None

    async def add(self, instance: Instance) -> None:
        self._db.insert_later(t.instances, [_instance_row(instance)])
        if instance.wake_at is not None:
            self.wake_times.append(instance.wake_at)

    async def save(self, instance: Instance) -> None:
        if instance.wake_at is not None:
            self.wake_times.append(instance.wake_at)
        row = _instance_row(instance)
        row.pop("ticket_number")
        await self._db.execute(
            t.instances.update().where(t.instances.c.ticket_number == instance.ticket_number).values(**row)
        )

    async def earliest_wake_up(self) -> datetime | None:
        return stored_utc(
            await self._db.scalar(
                select(t.instances.c.wake_at)
                .where(t.instances.c.state == "running", t.instances.c.wake_at.is_not(None))
                .order_by(t.instances.c.wake_at)
                .limit(1)
            )
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Instance]:
        query = (
            select(t.instances)
            .where(t.instances.c.wake_at <= now, t.instances.c.state == "running")
            .order_by(t.instances.c.wake_at)
            .limit(limit)
        )
        if is_postgres(self._db.conn):
            query = query.with_for_update(skip_locked=True)
        return [_instance(r) for r in await self._db.execute(query)]

    async def summaries(self, q: InstanceQuery) -> list[InstanceSummary]:
        c, d = t.instances.c, t.deployments.c
        where = [c.organization == q.organization]
        if q.states:
            where.append(c.state.in_(q.states))
        if q.process_id:
            where.append(c.process_id == q.process_id)
        if q.deployment_version:
            where.append(d.version == q.deployment_version)
        if q.after is not None:
            at, number = q.after
            where.append(or_(c.started_at < at, and_(c.started_at == at, c.ticket_number < number)))
        query = (
            select(*_SUMMARY_COLUMNS, d.version)
            .join(t.deployments, d.deployment_id == c.deployment_id)
            .where(*where)
            .order_by(c.started_at.desc(), c.ticket_number.desc())
            .limit(q.limit)
        )
        return [InstanceSummary(_instance(r), r.version) for r in await self._db.execute(query)]


def _instance_row(i: Instance) -> dict[str, Any]:
    return {
        "ticket_number": i.ticket_number,
        "organization": i.organization,
        "deployment_id": i.deployment_id,
        "process_id": i.process_id,
        "state": i.state,
        "engine_state": i.engine_state,
        "revision": i.revision,
        "wake_at": i.wake_at,
        "started_at": i.started_at,
        "ended_at": i.ended_at,
        "variables": i.variables,
        "active_steps": [[s.element_id, s.name, s.element_type] for s in i.active_steps],
        "routing": i.routing,
        "incidents": [
            {
                "id": x.incident_id,
                "element": x.element_id,
                "message": x.message,
                "at": x.at.isoformat(),
                "resolved": x.resolved,
                "blocking": x.blocking,
            }
            for x in i.incidents
        ],
    }


#: An instance's columns but its engine state and variables, the bulk of it.
_SUMMARY_COLUMNS = [c for c in t.instances.c if c.name not in ("engine_state", "variables")]


def _instance(row: Row[Any]) -> Instance:
    """The instance in `row`; without engine state and variables when the row has none."""
    m = row._mapping
    return Instance(
        ticket_number=m["ticket_number"],
        organization=m["organization"],
        deployment_id=m["deployment_id"],
        process_id=m["process_id"],
        state=m["state"],
        engine_state=bytes(m.get("engine_state", b"")),
        revision=m["revision"],
        started_at=stored_utc_required(m["started_at"]),
        wake_at=stored_utc(m["wake_at"]),
        ended_at=stored_utc(m["ended_at"]),
        variables=dict(m.get("variables", {})),
        active_steps=[ActiveStep(*s) for s in m["active_steps"]],
        routing=dict(m["routing"]),
        incidents=[
            Incident(
                x["id"],
                x["element"],
                x["message"],
                datetime.fromisoformat(x["at"]),
                x["resolved"],
                x.get("blocking", False),  # not stored before ResolveIncident existed
            )
            for x in m["incidents"]
        ],
    )


class SqlTasks:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get(self, task_id: str, *, for_update: bool = False) -> WorkTask | None:
        query = select(t.tasks).where(t.tasks.c.task_id == task_id)
        if for_update and is_postgres(self._db.conn):
            query = query.with_for_update()
        row = (await self._db.execute(query)).first()
        return _task(row) if row else None

    async def add(self, task: WorkTask) -> None:
        self._db.insert_later(t.tasks, [_task_row(task)])

    async def save(self, task: WorkTask) -> None:
        row = _task_row(task)
        row.pop("task_id")
        await self._db.execute(t.tasks.update().where(t.tasks.c.task_id == task.task_id).values(**row))

    async def open_of(self, ticket_number: str) -> list[WorkTask]:
        rows = await self._db.execute(
            select(t.tasks).where(
                t.tasks.c.ticket_number == ticket_number,
                t.tasks.c.state.in_([TaskState.OPEN.value, TaskState.CLAIMED.value]),
            )
        )
        return [_task(r) for r in rows]

    async def performers(self, ticket_number: str, element_ids: Sequence[str]) -> set[str]:
        if not element_ids:
            return set()
        rows = await self._db.execute(
            select(t.tasks.c.completed_by).where(
                t.tasks.c.ticket_number == ticket_number,
                t.tasks.c.element_id.in_(list(element_ids)),
                t.tasks.c.state == TaskState.COMPLETED.value,
            )
        )
        return {r for r in rows.scalars() if r}

    async def query(self, q: TaskQuery) -> list[WorkTask]:
        c = t.tasks.c
        where = [c.organization == q.organization]
        if q.states:
            where.append(c.state.in_([s.value for s in q.states]))
        if q.assignee:
            where.append(c.assignee == q.assignee)
        if q.ticket_number:
            where.append(c.ticket_number == q.ticket_number)
        if q.after is not None:
            at, task_id = q.after
            where.append(or_(c.created_at > at, and_(c.created_at == at, c.task_id > task_id)))
        query = select(t.tasks).where(*where).order_by(c.created_at, c.task_id)
        if not q.candidate_groups:
            rows = await self._db.execute(query.limit(q.limit))
            return [_task(r) for r in rows]
        # Candidate groups live in a JSON list: filter here, reading on until the page is full.
        wanted, found, offset = set(q.candidate_groups), list[WorkTask](), 0
        while len(found) < q.limit:
            page = (await self._db.execute(query.offset(offset).limit(200))).all()
            if not page:
                break
            offset += len(page)
            found.extend(task for task in map(_task, page) if wanted.intersection(task.candidate_groups))
        return found[: q.limit]


def _task_row(task: WorkTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "ticket_number": task.ticket_number,
        "organization": task.organization,
        "element_id": task.element_id,
        "name": task.name,
        "state": task.state.value,
        "assignee": task.assignee,
        "candidate_groups": list(task.candidate_groups),
        "excluded_subjects": list(task.excluded_subjects),
        "exclude_performers_of": list(task.exclude_performers_of),
        "form": [[f.id, f.label, f.type, f.required, list(f.choices)] for f in task.form],
        "priority": task.priority,
        "created_at": task.created_at,
        "due_at": task.due_at,
        "completed_at": task.completed_at,
        "completed_by": task.completed_by,
        "result": dict(task.result) if task.result is not None else None,
        "completion_request_id": task.completion_request_id,
    }


def _task(row: Row[Any]) -> WorkTask:
    m = row._mapping
    return WorkTask(
        task_id=m["task_id"],
        ticket_number=m["ticket_number"],
        organization=m["organization"],
        element_id=m["element_id"],
        name=m["name"],
        state=TaskState(m["state"]),
        candidate_groups=tuple(m["candidate_groups"]),
        form=tuple(FormField(f[0], f[1], f[2], f[3], tuple(f[4])) for f in m["form"]),
        created_at=stored_utc_required(m["created_at"]),
        assignee=m["assignee"],
        exclude_performers_of=tuple(m["exclude_performers_of"]),
        excluded_subjects=tuple(m["excluded_subjects"]),
        priority=m["priority"],
        due_at=stored_utc(m["due_at"]),
        completed_at=stored_utc(m["completed_at"]),
        completed_by=m["completed_by"],
        result=m["result"],
        completion_request_id=m["completion_request_id"],
    )


class SqlHistory:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, ticket_number: str, entries: Sequence[HistoryEntry]) -> None:
        if entries:
            self._db.insert_later(
                t.history,
                [
                    {
                        "ticket_number": ticket_number,
                        "at": e.at,
                        "actor_subject": e.actor_subject,
                        "actor_role": e.actor_role,
                        "action": e.action,
                        "element_id": e.element_id,
                        "detail": e.detail,
                    }
                    for e in entries
                ],
            )

    async def of(self, ticket_number: str) -> list[HistoryEntry]:
        rows = await self._db.execute(
            select(t.history).where(t.history.c.ticket_number == ticket_number).order_by(t.history.c.id)
        )
        return [
            HistoryEntry(stored_utc_required(r.at), r.actor_subject, r.actor_role, r.action, r.element_id, r.detail)
            for r in rows
        ]


class SqlClocks:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def of(self, ticket_number: str) -> list[SlaClock]:
        rows = await self._db.execute(
            select(t.sla_clocks).where(t.sla_clocks.c.ticket_number == ticket_number).order_by(t.sla_clocks.c.name)
        )
        return [_clock(r) for r in rows]

    async def save_all(self, ticket_number: str, clocks: Sequence[SlaClock], *, new: bool = False) -> None:
        """Replace the ticket's clocks; `new`: the instance is being created, there is nothing to replace."""
        if not new:
            await self._db.execute(delete(t.sla_clocks).where(t.sla_clocks.c.ticket_number == ticket_number))
        if clocks:
            self._db.insert_later(t.sla_clocks, [_clock_row(ticket_number, c) for c in clocks])


def _clock_row(ticket_number: str, c: SlaClock) -> dict[str, Any]:
    return {
        "ticket_number": ticket_number,
        "name": c.name,
        "calendar": c.calendar,
        "target": c.target,
        "state": c.state.value,
        "started_at": c.started_at,
        "due_at": c.due_at,
        "budget_seconds": c.budget.total_seconds(),
        "remaining_seconds": c.remaining.total_seconds(),
        "running_since": c.running_since,
        "paused_at": c.paused_at,
        "stopped_at": c.stopped_at,
        "warned": c.warned,
    }


def _clock(r: Row[Any]) -> SlaClock:
    return SlaClock(
        name=r.name,
        calendar=r.calendar,
        target=r.target,
        started_at=stored_utc_required(r.started_at),
        due_at=stored_utc_required(r.due_at),
        state=ClockState(r.state),
        budget=timedelta(seconds=r.budget_seconds),
        remaining=timedelta(seconds=r.remaining_seconds),
        running_since=stored_utc(r.running_since),
        paused_at=stored_utc(r.paused_at),
        stopped_at=stored_utc(r.stopped_at),
        warned=r.warned,
    )


class SqlMessages:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def seen(self, org: str, message_id: str) -> str | None:
        found: str | None = await self._db.scalar(
            select(t.messages.c.ticket_number).where(
                t.messages.c.organization == org, t.messages.c.message_id == message_id
            )
        )
        return found

    async def record(self, org: str, message_id: str, name: str, ticket_number: str, at: datetime) -> None:
        await self._db.execute(
            t.messages.insert().values(
                organization=org, message_id=message_id, name=name, ticket_number=ticket_number, received_at=at
            )
        )


__all__ = ["SqlClocks", "SqlDeployments", "SqlHistory", "SqlInstances", "SqlMessages", "SqlTasks"]
