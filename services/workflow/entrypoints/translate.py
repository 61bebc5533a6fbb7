"""proto ⇄ application values for the workflow API. No decisions here, only translation."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from supportflow.common.v1 import types_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb

from services.kit.errors import FieldViolation
from services.kit.events import set_timestamp, timestamp
from services.workflow.application.handlers import InstanceView
from services.workflow.application.ports import Deployment
from services.workflow.domain.errors import InvalidRequest
from services.workflow.domain.sla import ClockState, SlaClock
from services.workflow.domain.tasks import TaskState, WorkTask

PRIORITY_PB = {
    "P0": types_pb2.PRIORITY_P0,
    "P1": types_pb2.PRIORITY_P1,
    "P2": types_pb2.PRIORITY_P2,
    "P3": types_pb2.PRIORITY_P3,
}
TASK_STATE_PB = {
    TaskState.OPEN: pb.TASK_STATE_OPEN,
    TaskState.CLAIMED: pb.TASK_STATE_CLAIMED,
    TaskState.COMPLETED: pb.TASK_STATE_COMPLETED,
    TaskState.CANCELLED: pb.TASK_STATE_CANCELLED,
}
TASK_STATE_FROM_PB = {v: k for k, v in TASK_STATE_PB.items()}
INSTANCE_STATE_PB = {
    "running": pb.INSTANCE_STATE_RUNNING,
    "completed": pb.INSTANCE_STATE_COMPLETED,
    "cancelled": pb.INSTANCE_STATE_CANCELLED,
    "incident": pb.INSTANCE_STATE_INCIDENT,
}
INSTANCE_STATE_FROM_PB = {v: k for k, v in INSTANCE_STATE_PB.items()}
CLOCK_STATE_PB = {
    ClockState.RUNNING: pb.SLA_CLOCK_STATE_RUNNING,
    ClockState.PAUSED: pb.SLA_CLOCK_STATE_PAUSED,
    ClockState.MET: pb.SLA_CLOCK_STATE_MET,
    ClockState.BREACHED: pb.SLA_CLOCK_STATE_BREACHED,
    ClockState.CANCELLED: pb.SLA_CLOCK_STATE_CANCELLED,
}


def struct(values: Mapping[str, Any]) -> Struct:
    out = Struct()
    out.update(json.loads(json.dumps(dict(values), default=str)))
    return out


def from_struct(value: Struct) -> dict[str, Any]:
    """Struct numbers are doubles; whole numbers come back as int (a form's `long` field)."""

    def fix(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return {k: fix(v) for k, v in json_format.MessageToDict(value).items()}


def _ts(target: Any, field: str, value: datetime | None) -> None:
    if value is not None:
        set_timestamp(getattr(target, field), value)


def task_pb(task: WorkTask) -> pb.Task:
    out = pb.Task(
        task_id=task.task_id,
        ticket_number=task.ticket_number,
        organization=task.organization,
        element_id=task.element_id,
        name=task.name,
        state=TASK_STATE_PB[task.state],
        assignee=task.assignee,
        candidate_groups=task.candidate_groups,
        excluded_subjects=task.excluded_subjects,
        form=[
            pb.FormField(id=f.id, label=f.label, type=f.type, required=f.required, values=f.choices) for f in task.form
        ],
        completed_by=task.completed_by or "",
    )
    _ts(out, "created_at", task.created_at)
    _ts(out, "due_at", task.due_at)
    _ts(out, "completed_at", task.completed_at)
    if task.priority in PRIORITY_PB:
        out.priority = PRIORITY_PB[task.priority]
    if task.result:
        out.context.CopyFrom(struct(task.result))
    return out


def deployment_pb(d: Deployment) -> pb.Deployment:
    out = pb.Deployment(
        deployment_id=d.deployment_id,
        organization=d.organization,
        version=d.version,
        checksum=d.checksum,
        deployed_by=d.deployed_by,
        description=d.description,
        process_ids=d.process_ids,
        files=d.files,
    )
    _ts(out, "deployed_at", d.deployed_at)
    return out


def clock_pb(c: SlaClock, now: datetime) -> pb.SlaClock:
    out = pb.SlaClock(name=c.name, calendar=c.calendar, state=CLOCK_STATE_PB[c.state], target=c.target)
    _ts(out, "started_at", c.started_at)
    _ts(out, "due_at", c.due_at)
    _ts(out, "stopped_at", c.stopped_at)
    out.remaining.FromTimedelta(c.remaining)
    return out


def instance_pb(view: InstanceView, now: datetime) -> pb.ProcessInstance:
    i = view.instance
    out = pb.ProcessInstance(
        ticket_number=i.ticket_number,
        organization=i.organization,
        process_id=i.process_id,
        deployment_version=view.deployment_version,
        state=INSTANCE_STATE_PB.get(i.state, pb.INSTANCE_STATE_UNSPECIFIED),
        active_steps=[
            pb.ActiveStep(element_id=s.element_id, name=s.name, element_type=s.element_type) for s in i.active_steps
        ],
        variables=struct(i.variables),
        history=[
            pb.HistoryEntry(
                at=timestamp(h.at),
                actor=types_pb2.Actor(subject=h.actor_subject, role=h.actor_role),
                action=h.action,
                element_id=h.element_id,
                detail=h.detail,
            )
            for h in view.history
        ],
        sla_clocks=[clock_pb(c, now) for c in view.clocks],
        incidents=[
            pb.Incident(
                incident_id=x.incident_id,
                element_id=x.element_id,
                message=x.message,
                at=timestamp(x.at),
                resolved=x.resolved,
                blocking=x.blocking,
            )
            for x in i.incidents
        ],
    )
    _ts(out, "started_at", i.started_at)
    _ts(out, "ended_at", i.ended_at)
    routing = i.routing
    if routing:
        out.routing.category = str(routing.get("category", ""))
        out.routing.team = str(routing.get("team", ""))
        if routing.get("priority") in PRIORITY_PB:
            out.routing.priority = PRIORITY_PB[routing["priority"]]
        groups = routing.get("candidate_groups") or (
            [routing["candidate_group"]] if routing.get("candidate_group") else []
        )
        out.routing.candidate_groups.extend(str(g) for g in groups)
        for rule in routing.get("matched_rules", []) or []:
            if isinstance(rule, dict):
                out.routing.matched_rules.add(
                    decision_id=str(rule.get("decision_id", "")),
                    rule_id=str(rule.get("rule_id", "")),
                    description=str(rule.get("description", "")),
                    outputs=struct(rule.get("outputs", {}) or {}),
                )
    return out


def encode_page_token(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def decode_page_token(token: str) -> list[Any] | None:
    if not token:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list):
        raise _not_our_token()
    return values


def encode_position(at: datetime, key: str) -> str:
    """A page token for the rows after the one at (`at`, `key`): what `decode_position` reads."""
    return encode_page_token([at.isoformat(), key])


def decode_position(token: str) -> tuple[datetime, str] | None:
    """The (time, id) of the last row of the previous page, from an `encode_position` token."""
    values = decode_page_token(token)
    if values is None:
        return None
    try:
        at, key = values
        return datetime.fromisoformat(at), str(key)
    except (TypeError, ValueError):
        raise _not_our_token() from None


def decode_version(token: str) -> int | None:
    """The version of the last deployment of the previous page."""
    values = decode_page_token(token)
    if values is None:
        return None
    if len(values) != 1 or not isinstance(values[0], int):
        raise _not_our_token()
    return values[0]


def _not_our_token() -> InvalidRequest:
    return InvalidRequest([FieldViolation("page_token", "is not a token this service issued")])
