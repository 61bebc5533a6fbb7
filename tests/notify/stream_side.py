"""Plays intake and workflow on the stream: publishes their events exactly as their relays do
(Nats-Msg-Id = event id, unless a test republishes under a new one), for one ticket at a time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from google.protobuf.message import Message
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2 as ev

from services.kit.events import new_event, subject_for, timestamp
from services.kit.messaging import ensure_stream

T = TypeVar("T")
STREAM = "SUPPORTFLOW"
DEADLINE = 10.0
TITLE = "月度销售报表导出失败"
SYSTEM = ("system", "system")  # what workflow's own steps carry (its throws, tasks opened, SLA clocks)
REQUESTER = ("E1001", "requester")
LEAD = ("lead-1", "team_lead")
CHANGE_MANAGER = ("cm-1", "change_manager")

#: The SLA targets and calendar workflow's DMN gives each priority (as in tests/notify/story.py).
TARGETS = {
    types_pb2.PRIORITY_P0: ({"assign": "PT15M", "respond": "PT30M", "resolve": "PT4H", "contact": "PT15M"}, "24x7"),
    types_pb2.PRIORITY_P1: ({"assign": "PT30M", "respond": "PT2H", "resolve": "P1D"}, "cn-workdays"),
    types_pb2.PRIORITY_P2: ({"assign": "PT1H", "respond": "PT4H", "resolve": "P3D"}, "cn-workdays"),
}


async def until(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = DEADLINE) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.03)


def ticket_number() -> str:
    return f"TS20260302{uuid.uuid4().int % 10**6:06d}"


class Ticket:
    """Builds one ticket's events, each at the clock's current time."""

    def __init__(self, number: str, now: Callable[[], datetime], *, org: str = "acme") -> None:
        self.number, self.org, self._now = number, org, now

    def event(self, payload: Message, *, actor: tuple[str, str] = SYSTEM) -> ev.Event:
        return new_event(
            payload=payload,
            org=self.org,
            ticket_number=self.number,
            producer="intake" if actor[1] == "requester" else "workflow",
            actor_subject=actor[0],
            actor_role=actor[1],
            occurred_at=self._now(),
        )

    def submitted(
        self, *, requester: str = "E1001", name: str = "李雷", email: str = "li.lei@acme.example", title: str = TITLE
    ) -> ev.Event:
        return self.event(
            ev.TicketSubmitted(
                title=title,
                requester=types_pb2.Requester(id=requester, name=name),
                contact=types_pb2.Contact(email=email),
                channel="portal",
                problem_type="data_anomaly",
                impact_scope="department",
                urgency="high",
                description="导出 10 月销售报表时提示“数据异常”，文件为空。",
                submitted_at=timestamp(self._now()),
            ),
            actor=(requester, "requester"),
        )

    def classified(
        self,
        priority: types_pb2.Priority.ValueType = types_pb2.PRIORITY_P1,
        *,
        team: str = "开发团队 Development",
        groups: Sequence[str] = ("development",),
    ) -> ev.Event:
        targets, calendar = TARGETS[priority]
        return self.event(
            ev.TicketClassified(
                priority=priority,
                category="incident",
                team=team,
                candidate_groups=list(groups),
                sla_targets=targets,
                calendar=calendar,
                deployment_version=1,
            )
        )

    def assigned(self, assignee: str = "agent-1", co_handlers: Sequence[str] = ()) -> ev.Event:
        return self.event(
            ev.TicketAssigned(team="开发团队 Development", assignee=assignee, co_handlers=list(co_handlers)), actor=LEAD
        )

    def approval_requested(self) -> ev.Event:
        return self.event(
            ev.ChangeApprovalRequested(
                task_id="t5",
                plan=ev.ChangePlan(
                    summary="修复订单 SO-1003 的金额字段并重建报表缓存",
                    steps=["备份 orders 表", "更新 SO-1003 金额"],
                    risk="低：只改一条记录",
                    backup_plan="导出 orders 表快照",
                    rollback_plan="从快照恢复该记录",
                ),
                author="agent-1",
                round=1,
            ),
            actor=("agent-1", "agent"),
        )

    def claimed(self, task_id: str, element_id: str, by: tuple[str, str]) -> ev.Event:
        """`by` claims the task (workflow's ClaimTask): the claim is theirs."""
        return self.event(ev.TaskClaimed(task_id=task_id, element_id=element_id, assignee=by[0]), actor=by)

    def change_decided(self, *, approved: bool, approver: str = "cm-1") -> ev.Event:
        return self.event(ev.ChangeDecided(approved=approved, approver=approver, comment="注意备份", round=1))

    def review_requested(self, performer: str = "agent-1") -> ev.Event:
        return self.event(ev.ReviewRequested(task_id="t7", operation="data modification", performer=performer))

    def review_decided(self, *, approved: bool, reviewer: str = "lead-1") -> ev.Event:
        return self.event(ev.ReviewDecided(approved=approved, reviewer=reviewer, comment="核对无误"))

    def resolved(self) -> ev.Event:
        return self.event(
            ev.TicketResolved(
                resolved_by="agent-1",
                cause="10 月 3 日订单 SO-1003 的金额字段为空。",
                measures="补录了该订单金额并重建了 10 月报表缓存。",
                summary="已验证导出正常。",
            ),
            actor=("agent-1", "agent"),
        )


async def publish(nc: Client, *events: ev.Event, msg_id: Callable[[ev.Event], str] = lambda e: e.event_id) -> int:
    """Publish in order; returns the stream sequence of the last one."""
    js = nc.jetstream()
    await ensure_stream(js, STREAM, 900.0)
    seq = 0
    for event in events:
        ack = await js.publish(
            subject_for(event.organization, event.type),
            event.SerializeToString(),
            headers={"Nats-Msg-Id": msg_id(event)},
        )
        seq = ack.seq
    return seq


async def consumed(nc: Client, up_to: int, durable: str = "notify-events", within: float = DEADLINE) -> None:
    """Wait until the durable consumer has acknowledged everything up to stream sequence `up_to`."""

    async def floor() -> int:
        info = await nc.jetstream().consumer_info(STREAM, durable)
        return int(info.ack_floor.stream_seq or 0)

    reached = await until(floor, lambda seq: seq >= up_to, within)
    assert reached >= up_to, f"notify consumed up to {reached}, not {up_to}"
