"""A realistic ticket, event by event, as real envelopes (built by the kit, decoded like the
consumer will): ACME's 李雷 (E1001) cannot export the monthly report; the data anomaly is routed to
the development team, escalated, fixed with an approved change and a dual-reviewed data repair,
resolved, rated dissatisfied, revisited and closed. Also the shipped configuration, loaded once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2 as ev

from services.kit.events import new_event, timestamp
from services.notify.adapters.event_codec import decode
from services.notify.domain.config import NotifyConfig, load_notify_config
from services.notify.domain.event import TicketEvent

NOTIFY_DIR = Path(__file__).resolve().parents[2] / "bpmn" / "notify"
NUMBER = "TS20231027000001"
TITLE = "月度销售报表导出失败"
T0 = datetime(2023, 10, 27, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def notify_files(root: Path = NOTIFY_DIR) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@cache
def shipped() -> NotifyConfig:
    return load_notify_config(notify_files())


def envelope(
    payload: Message,
    *,
    minutes: float = 0,
    # The workflow's own steps (throws, tasks opened, SLA clocks) are the system's; a claim, a
    # completed task and the assignment its form makes are the person's.
    actor: tuple[str, str] = ("system", "system"),
    org: str = "acme",
    number: str = NUMBER,
    event_id: str | None = None,
) -> TicketEvent:
    producer = "intake" if actor[1] == "requester" else "workflow"
    return decode(
        new_event(
            payload=payload,
            org=org,
            ticket_number=number,
            producer=producer,
            actor_subject=actor[0],
            actor_role=actor[1],
            occurred_at=T0 + timedelta(minutes=minutes),
            event_id=event_id or str(uuid.uuid4()),
        )
    )


def at(minutes: float) -> Timestamp:
    return timestamp(T0 + timedelta(minutes=minutes))


REQUESTER = ("E1001", "requester")
AGENT = ("agent-1", "agent")
ENGINEER = ("engineer-2", "agent")
LEAD = ("lead-1", "team_lead")
CM = ("cm-1", "change_manager")


def submitted(org: str = "acme", number: str = NUMBER, **overrides: object) -> TicketEvent:
    payload = ev.TicketSubmitted(
        title=TITLE,
        requester=types_pb2.Requester(id="E1001", name="李雷", department="财务部", company="ACME"),
        contact=types_pb2.Contact(phone="13800000000", email="li.lei@acme.example"),
        channel="portal",
        problem_type="data_anomaly",
        impact_scope="department",
        urgency="high",
        description="导出 10 月销售报表时提示“数据异常”，文件为空。",
        submitted_at=at(0),
        info_incomplete=False,
    )
    for name, value in overrides.items():
        setattr(payload, name, value)
    return envelope(payload, actor=REQUESTER, org=org, number=number)


def classified(
    priority: types_pb2.Priority.ValueType = types_pb2.PRIORITY_P1, *, minutes: float = 0.1, event_id: str | None = None
) -> TicketEvent:
    targets = {
        types_pb2.PRIORITY_P0: {"assign": "PT15M", "respond": "PT30M", "resolve": "PT4H", "contact": "PT15M"},
        types_pb2.PRIORITY_P1: {"assign": "PT30M", "respond": "PT2H", "resolve": "P1D"},
        types_pb2.PRIORITY_P2: {"assign": "PT1H", "respond": "PT4H", "resolve": "P3D"},
    }[priority]
    return envelope(
        ev.TicketClassified(
            priority=priority,
            category="incident",
            team="开发团队 Development",
            candidate_groups=["development"],
            sla_targets=targets,
            calendar="24x7" if priority == types_pb2.PRIORITY_P0 else "cn-workdays",
            deployment_version=1,
        ),
        minutes=minutes,
        event_id=event_id,
    )


def lifecycle() -> Iterator[TicketEvent]:
    """Every event type of events.proto, in an order the process could produce them."""
    yield submitted()
    yield classified()
    yield envelope(
        ev.TicketInfoRequested(
            missing_info=["attachment:screenshot|log", "environment.software_version"], remind_at=at(61)
        ),
        minutes=1,
    )
    yield envelope(
        ev.TicketSupplemented(
            additional_description="附上报错截图，客户端版本 5.2.1。",
            attachments=[types_pb2.Attachment(attachment_id="a1", file_name="error.png", kind="screenshot")],
            missing_info=[],
        ),
        minutes=20,
        actor=REQUESTER,
    )
    yield envelope(
        ev.TaskCreated(
            task_id="t1",
            element_id="Task_AssignTicket",
            name="Assign ticket",
            candidate_groups=["development", "team_lead"],
            due_at=at(50),
            priority=types_pb2.PRIORITY_P1,
        ),
        minutes=20.1,
    )
    yield envelope(ev.SlaWarning(clock="assign", due_at=at(50), remaining_seconds=360), minutes=44)
    yield envelope(
        ev.TaskClaimed(task_id="t1", element_id="Task_AssignTicket", assignee="lead-1"), minutes=45, actor=LEAD
    )
    yield envelope(
        ev.TaskCompleted(task_id="t1", element_id="Task_AssignTicket", name="Assign ticket", completed_by="lead-1"),
        minutes=46,
        actor=LEAD,
    )
    yield envelope(
        ev.TicketAssigned(team="开发团队 Development", assignee="agent-1", co_handlers=["engineer-2"]),
        minutes=46,
        actor=LEAD,
    )
    yield envelope(
        ev.TaskCreated(
            task_id="t2",
            element_id="Task_Diagnose",
            name="Diagnose (tier 1)",
            candidate_groups=["tier1", "tier2"],
            assignee="agent-1",
            due_at=at(166),
            priority=types_pb2.PRIORITY_P1,
        ),
        minutes=46.1,
    )
    yield envelope(ev.SlaWarning(clock="respond", due_at=at(166), remaining_seconds=1440), minutes=142)
    yield envelope(ev.SlaBreached(clock="respond", due_at=at(166), breached_at=at(166)), minutes=166)
    yield envelope(
        ev.TicketEscalated(
            from_tier="tier1",
            to_tier="tier2",
            automatic=True,
            reason="首次响应超时",
            form=ev.EscalationForm(
                problem_description="导出时报数据异常",
                impact="财务部月结受阻",
                solutions_tried=["重新导出", "清除客户端缓存"],
                reason="疑似数据问题",
                suggested_team="开发团队",
            ),
            respond_by=at(226),
        ),
        minutes=166,
    )
    yield envelope(
        ev.TicketCommented(comment_id="c1", body="已定位到 10 月 3 日的一条订单金额为空。"), minutes=190, actor=ENGINEER
    )
    yield envelope(ev.TicketCommented(comment_id="c2", body="今天下班前能修好吗？"), minutes=191, actor=REQUESTER)
    yield envelope(ev.TicketProgressDue(sequence=2, due_at=at(200)), minutes=200)
    yield envelope(
        ev.ChangeApprovalRequested(
            task_id="t5",
            plan=ev.ChangePlan(
                summary="修复订单 SO-1003 的金额字段并重建报表缓存",
                steps=["备份 orders 表", "更新 SO-1003 金额", "重建 10 月报表缓存"],
                risk="低：只改一条记录",
                backup_plan="导出 orders 表快照",
                rollback_plan="从快照恢复该记录",
                major=False,
            ),
            author="agent-1",
            round=1,
        ),
        minutes=210,
    )
    # The change manager and the reviewer claim their tasks: the ticket's handler stays agent-1.
    yield envelope(
        ev.TaskClaimed(task_id="t5", element_id="Task_ApproveChange", assignee="cm-1"), minutes=220, actor=CM
    )
    yield envelope(ev.ChangeDecided(approved=True, approver="cm-1", comment="同意，注意备份。", round=1), minutes=230)
    yield envelope(ev.ReviewRequested(task_id="t7", operation="data modification", performer="agent-1"), minutes=240)
    yield envelope(
        ev.TaskClaimed(task_id="t7", element_id="Task_ReviewKeyOperation", assignee="lead-1"), minutes=245, actor=LEAD
    )
    yield envelope(ev.ReviewDecided(approved=True, reviewer="lead-1", comment="核对无误"), minutes=250)
    yield envelope(
        ev.TicketResolved(
            resolved_by="agent-1",
            cause="10 月 3 日订单 SO-1003 的金额字段为空，导致报表汇总失败。",
            measures="补录了该订单金额并重建了 10 月报表缓存。",
            summary="已在测试环境验证导出正常。",
        ),
        minutes=260,
    )
    yield envelope(ev.TicketVerified(accepted=False, comment="导出的文件还是空的"), minutes=300, actor=REQUESTER)
    yield envelope(ev.TicketVerified(accepted=True, comment="可以了"), minutes=400, actor=REQUESTER)
    yield envelope(ev.TicketSurveyRequested(respond_by=at(400 + 3 * 24 * 60)), minutes=401)
    yield envelope(ev.TicketRated(rating=types_pb2.RATING_DISSATISFIED, comment="太慢了"), minutes=500, actor=REQUESTER)
    yield envelope(
        ev.TicketRevisitRequired(task_id="t9", due_at=at(500 + 12 * 60), rating_comment="太慢了"), minutes=501
    )
    yield envelope(ev.TicketClosed(outcome="completed", rating=types_pb2.RATING_DISSATISFIED), minutes=900)
    yield envelope(ev.TicketCancelled(reason="重复提交"), minutes=901, actor=REQUESTER)
