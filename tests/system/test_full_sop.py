"""One ticket through the whole support process of SOP §1, on the whole system: intake, workflow
and notify as separate OS processes on PostgreSQL and NATS JetStream, notify mailing a real SMTP
server and calling a real HTTP server (tests/system/conftest.py).

The demo's story (services/demo/story.py) drives the ticket through the public gRPC APIs: 李雷
submits it without a screenshot and the software version, is asked for them and supplies them; the
development team names the handler; tier 1 escalates with the form; tier 2 takes over; the
production change is rejected, reworked and approved (never by its author); the data repair is
reviewed by a second person; the fix is verified internally and by the requester, who rates it
dissatisfied; the team lead calls back; the handler closes the ticket.

The test checks, with its own calls and its own sinks, what people would notice: the ticket's
status in intake at each key point and at the end, the process history in workflow, and every
notice in the mailbox and at the webhook receivers — right people, right words and language, one
mail thread, nothing twice. The variants restart one service in the middle of the run: right after
an action whose consequences may still be on their way (SIGTERM: a deployment; SIGKILL: a crash),
or stopped during the action, so that what it caused waits for the service to come back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TypeVar

import grpc
import pytest
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc
from supportflow.notify.v1 import notify_pb2, notify_pb2_grpc
from supportflow.workflow.v1 import workflow_pb2, workflow_pb2_grpc

from services.demo.story import SCREENSHOT, STEPS, TITLE
from services.demo.ticket import Run
from services.demo.timeline import Timeline
from services.kit.auth import mint_token
from tests.system.conftest import FEED_PATH, FEED_SECRET, MAIL_DOMAIN, SECRET, WECOM_KEY, WECOM_PATH, System

pytestmark = pytest.mark.e2e

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
WITHIN = 30.0


def auth(sub: str, *roles: str, groups: tuple[str, ...] = ()) -> Metadata:
    token = mint_token(secret=SECRET, subject=sub, org="acme", roles=roles, groups=groups)
    return (("authorization", f"Bearer {token}"),)


REQUESTER = auth("E1001", "requester")
LEAD = auth("lead-1", "team_lead", "agent", groups=("team_lead",))


def until(fetch: Callable[[], T], done: Callable[[T], bool], within: float = WITHIN) -> T:
    """`fetch()` until `done` says yes or time is up; the last value either way."""
    deadline = time.monotonic() + within
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@dataclass(frozen=True)
class Restart:
    service: str
    #: The step around whose act the service is restarted.
    step: str
    #: "sigterm" / "sigkill": stopped right after the act, while its consequences may be on their
    #: way, and started again; "down": stopped (SIGTERM) before the act and started after it, so
    #: that what the act caused waits for the service.
    how: str

    def stop(self, system: System) -> None:
        system.stop(self.service, signal.SIGKILL if self.how == "sigkill" else signal.SIGTERM)


RESTARTS = [
    pytest.param(None, id="no-restart"),
    # The requester's supplement is on its way to the workflow.
    *(
        pytest.param(Restart("workflow", "supplement", how), id=f"workflow-{how}")
        for how in ("sigterm", "sigkill", "down")
    ),
    # The assignment, and the tasks it opens, are on their way to intake's read model.
    *(pytest.param(Restart("intake", "assign", how), id=f"intake-{how}") for how in ("sigterm", "sigkill", "down")),
    # The escalation's notices are being recorded and sent.
    *(pytest.param(Restart("notify", "escalate", how), id=f"notify-{how}") for how in ("sigterm", "sigkill", "down")),
]

#: What intake shows after a step, once it has projected the step's last event (event, how many).
STATUS_AFTER = {
    "submit": (types_pb2.TICKET_STATUS_WAITING_FOR_REQUESTER, "", ("ticket.info_requested", 1)),
    "assign": (types_pb2.TICKET_STATUS_ACCEPTED, "agent-1", ("ticket.assigned", 1)),
    "escalate": (types_pb2.TICKET_STATUS_IN_PROGRESS, "agent-1", ("ticket.escalated", 1)),
    # Tier 2 taking the ticket over changes its handler, not its progress.
    "tier2": (types_pb2.TICKET_STATUS_IN_PROGRESS, "engineer-2", ("ticket.assigned", 2)),
    "verify-internally": (types_pb2.TICKET_STATUS_RESOLVED, "engineer-2", ("ticket.resolved", 1)),
    "user-verification": (types_pb2.TICKET_STATUS_COMPLETED, "engineer-2", ("ticket.survey_requested", 1)),
    "rating": (types_pb2.TICKET_STATUS_IN_PROGRESS, "engineer-2", ("ticket.revisit_required", 1)),
    "close": (types_pb2.TICKET_STATUS_CLOSED, "engineer-2", ("ticket.closed", 1)),
}
#: What happened to the ticket, as intake's timeline and workflow's history both tell it.
MILESTONES = [
    "ticket.classified",
    "ticket.info_requested",
    "ticket.assigned",
    "ticket.escalated",
    "ticket.assigned",
    "change.approval_requested",
    "change.decided",
    "change.approval_requested",
    "change.decided",
    "review.requested",
    "review.decided",
    "ticket.resolved",
    "ticket.survey_requested",
    "ticket.revisit_required",
    "ticket.closed",
]
#: Who each milestone is by: the process's own steps are the system's (common.v1.Actor), also
#: right after a person's action; an assignment is the person whose form named the handler.
MILESTONE_ACTORS = [(kind, "engineer-2" if kind == "ticket.assigned" else "system") for kind in MILESTONES]
REQUESTER_ACTIONS = ["ticket.submitted", "ticket.supplemented", "ticket.verified", "ticket.rated"]
DONE_BY = [
    ("Task_AssignTicket", "engineer-2"),
    ("Task_Diagnose", "agent-1"),
    ("Task_FileEscalationForm", "agent-1"),
    ("Task_Tier2Respond", "engineer-2"),
    ("Task_Tier2Investigate", "engineer-2"),
    ("Task_PlanSolution", "engineer-2"),
    ("Task_PlanChange", "engineer-2"),
    ("Task_ApproveChange", "cm-1"),  # rejected
    ("Task_PlanChange", "engineer-2"),
    ("Task_ApproveChange", "cm-1"),  # approved: never by the author
    ("Task_ConfirmPlanWithRequester", "engineer-2"),
    ("Task_PerformKeyOperation", "engineer-2"),
    ("Task_ReviewKeyOperation", "lead-1"),  # never by the performer
    ("Task_VerifyInternally", "agent-1"),
    ("Task_Revisit", "lead-1"),
    ("Task_CloseTicket", "engineer-2"),
]
#: Who gets which mail: recipient → notices (see `kind_of`).
MAILS = {
    "li.lei@acme.example": ["receipt", "info request", "result notice", "survey", "closure"],
    "wang.fang@acme.example": ["assignment"],
    "zhang.wei@acme.example": ["escalation", "change rejected", "change approved", "review passed", "revisit"],
    "maria.schmidt@acme.example": ["approval request", "approval request, round 2"],
    "chen.jing@acme.example": ["review request", "revisit"],
}
NAMES = {
    "li.lei@acme.example": "李雷",
    "wang.fang@acme.example": "王芳",
    "zhang.wei@acme.example": "张伟",
    "maria.schmidt@acme.example": "Maria Schmidt",
    "chen.jing@acme.example": "陈静",
}
ENGLISH_READERS = {"maria.schmidt@acme.example"}  # directory.toml: locale = "en"
#: The first line of each notice's text (bpmn/notify/templates) says which notice it is.
KINDS = [
    ("您的服务单已受理", "receipt"),
    ("请补充以下信息", "info request"),
    ("以下服务单已分派给您", "assignment"),
    ("已升级至", "escalation"),
    ("变更方案被驳回", "change rejected"),
    ("变更方案已获批准", "change approved"),
    ("需要双人复核", "review request"),
    ("复核已通过", "review passed"),
    ("号服务单已处理完成", "result notice"),
    ("请对本次服务进行评价", "survey"),
    ("请安排回访", "revisit"),
    ("已关闭", "closure"),
    ("awaits your approval (round 2)", "approval request, round 2"),
    ("awaits your approval", "approval request"),
]


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def kind_of(mail: EmailMessage) -> str:
    first = text_of(mail).splitlines()[0]
    return next((kind for phrase, kind in KINDS if phrase in first), f"unknown: {first}")


@pytest.mark.parametrize("restart", RESTARTS)
def test_one_ticket_through_the_whole_support_process(system: System, restart: Restart | None) -> None:
    intake_channel = grpc.insecure_channel(system.endpoints.intake)
    intake = intake_pb2_grpc.IntakeServiceStub(intake_channel)

    def ticket(number: str) -> intake_pb2.Ticket:
        return intake.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=REQUESTER, timeout=10)

    # -- the story, with one restart in the middle and intake looked at after each key step ------
    seen: dict[str, intake_pb2.Ticket] = {}
    with system.desk() as desk:
        run = Run(desk, Timeline(sys.stdout, "Asia/Shanghai"))  # printed when the test fails
        for step in STEPS:
            here = restart if restart is not None and step.key == restart.step else None
            if here is not None and here.how == "down":
                here.stop(system)
            step.act(run)
            if here is not None:
                if here.how != "down":
                    here.stop(system)
                system.start(here.service)
            step.settle(run)
            if step.key in STATUS_AFTER:
                event, count = STATUS_AFTER[step.key][2]
                seen[step.key] = until(
                    lambda: ticket(run.number),
                    lambda t, e=event, n=count: [x.event_type for x in t.timeline].count(e) >= n,
                )
            elif step.key == "supplement":
                seen[step.key] = ticket(run.number)
    number = run.number
    submitted = seen["submit"]
    assert submitted.info_incomplete
    assert list(submitted.missing_info) == ["attachment:screenshot|log", "environment.software_version"]
    assert (submitted.priority, submitted.team) == (types_pb2.PRIORITY_P2, "开发团队 Development")
    supplemented = seen["supplement"]
    assert (supplemented.info_incomplete, list(supplemented.missing_info)) == (False, [])
    assert supplemented.environment.software_version == "8.2.1"
    assert [(a.kind, a.sha256) for a in supplemented.attachments] == [
        ("screenshot", hashlib.sha256(SCREENSHOT).hexdigest())
    ]
    assert seen["rating"].rating == types_pb2.RATING_DISSATISFIED

    # -- intake at the end: what the requester sees --------------------------------------------
    final = ticket(number)
    assert final.status == types_pb2.TICKET_STATUS_CLOSED
    assert (final.priority, final.category, final.team) == (types_pb2.PRIORITY_P2, "incident", "开发团队 Development")
    assert (final.assignee, final.rating) == ("engineer-2", types_pb2.RATING_DISSATISFIED)
    timeline = [e.event_type for e in final.timeline]
    assert [e for e in timeline if e in MILESTONES or e in REQUESTER_ACTIONS] == [
        "ticket.submitted",
        *MILESTONES[:2],
        "ticket.supplemented",
        *MILESTONES[2:12],
        "ticket.verified",
        "ticket.survey_requested",
        "ticket.rated",
        *MILESTONES[13:],
    ], "every step once, in order, also across the restart"
    # Who did it, as the timeline tells the requester: people for their own actions, "system" for
    # what the process did by itself (classified, asked, escalated, decided, resolved, closed…).
    by = [(e.event_type, e.actor.subject) for e in final.timeline]
    assert [entry for entry in by if entry[0] in MILESTONES] == MILESTONE_ACTORS
    assert {who for kind, who in by if kind in REQUESTER_ACTIONS} == {"E1001"}
    assert [who for kind, who in by if kind == "task.completed"] == [who for _, who in DONE_BY]
    assert {who for kind, who in by if kind == "task.created"} == {"system"}

    # -- workflow: the instance's history ------------------------------------------------------
    workflow = workflow_pb2_grpc.WorkflowServiceStub(grpc.insecure_channel(system.endpoints.workflow))
    instance = workflow.GetProcessInstance(
        workflow_pb2.GetProcessInstanceRequest(ticket_number=number), metadata=LEAD, timeout=10
    )
    assert instance.state == workflow_pb2.INSTANCE_STATE_COMPLETED
    assert (instance.process_id, instance.deployment_version) == ("support_ticket", 1)
    history = list(instance.history)
    assert [(h.element_id, h.actor.subject) for h in history if h.action == "task.completed"] == DONE_BY
    assert [(h.action, h.actor.subject) for h in history if h.action in MILESTONES] == MILESTONE_ACTORS
    assert [(h.detail, h.actor.subject) for h in history if h.action == "message"] == [
        ("ticket.supplemented", "E1001"),
        ("ticket.verified", "E1001"),
        ("ticket.rated", "E1001"),
    ]
    assert [h.element_id for h in history if h.action == "task.withdrawn"] == ["Task_ObtainMissingInfo"]
    assert [h.action for h in history if h.action in ("started", "completed", "cancelled", "incident")] == [
        "started",
        "completed",
    ]
    assert [(r.decision_id, r.rule_id) for r in instance.routing.matched_rules] == [
        ("priority", "Rule_Priority_Workaround"),
        ("routing", "Rule_Routing_SoftwareFault"),
        ("sla_targets", "Rule_SlaTargets_P2"),
    ]
    clocks = {c.name: workflow_pb2.SlaClockState.Name(c.state) for c in instance.sla_clocks}
    assert clocks == dict.fromkeys(
        ("assign", "diagnose", "resolve", "respond", "revisit", "tier2"), "SLA_CLOCK_STATE_MET"
    )
    open_tasks = workflow.ListTasks(
        workflow_pb2.ListTasksRequest(
            ticket_number=number, states=[workflow_pb2.TASK_STATE_OPEN, workflow_pb2.TASK_STATE_CLAIMED]
        ),
        metadata=LEAD,
        timeout=10,
    )
    assert list(open_tasks.tasks) == []

    # -- notify: every notice sent, once ----------------------------------------------------------
    notify = notify_pb2_grpc.NotifyServiceStub(grpc.insecure_channel(system.endpoints.notify))

    def listed(who: Metadata = LEAD) -> list[notify_pb2.Notification]:
        found = notify.ListNotifications(
            notify_pb2.ListNotificationsRequest(organization="acme", ticket_number=number, page_size=200),
            metadata=who,
            timeout=10,
        )
        return list(found.notifications)

    mail_count = sum(len(kinds) for kinds in MAILS.values())
    notices = until(
        listed,
        lambda found: (
            sum(n.channel == notify_pb2.CHANNEL_EMAIL for n in found) == mail_count
            and any(n.event_type == "ticket.closed" and n.channel == notify_pb2.CHANNEL_WEBHOOK for n in found)
            and all(n.status == notify_pb2.DELIVERY_STATUS_SENT for n in found)
        ),
        within=60,
    )
    assert Counter(notify_pb2.DeliveryStatus.Name(n.status) for n in notices) == {"DELIVERY_STATUS_SENT": len(notices)}
    by_channel = Counter(notify_pb2.Channel.Name(n.channel) for n in notices)
    assert (by_channel["CHANNEL_EMAIL"], by_channel["CHANNEL_WEBHOOK"]) == (mail_count, 3)
    inbox = listed(REQUESTER)  # what 李雷 finds in the portal's inbox
    assert sorted(n.template for n in inbox) == [
        "closure",
        "info_request",
        "receipt",
        "result_notice",
        "survey_request",
    ]
    assert {n.recipient for n in inbox} == {"E1001"}

    # -- the mailbox ----------------------------------------------------------------------------
    mails = system.smtp.for_ticket(number)
    distinct = {m["Message-ID"]: m for m in mails}
    if restart is not None and restart.service == "notify" and restart.how == "sigkill":
        # A crash between the SMTP server's "250 OK" and recording it sent sends that mail again:
        # the very same message (same Message-ID), which mail programs show once.
        repeats = [m for m in mails if m is not distinct[m["Message-ID"]]]
        assert all(m.as_bytes() == distinct[m["Message-ID"]].as_bytes() for m in repeats)
    else:
        assert len(mails) == len(distinct), "no mail twice"
    mails = list(distinct.values())
    received = {
        address: sorted(kind_of(m) for m in mails if m["To"].addresses[0].addr_spec == address) for address in MAILS
    }
    assert received == {address: sorted(kinds) for address, kinds in MAILS.items()}
    assert len(mails) == mail_count, "nobody else was mailed"
    root = f"<ticket-{number}@{MAIL_DOMAIN}>"
    for mail in mails:
        address = mail["To"].addresses[0]
        assert address.display_name == NAMES[address.addr_spec]
        assert mail["From"] == "ACME 技术支持 <support@acme.example>"
        english = address.addr_spec in ENGLISH_READERS
        assert mail["Subject"] == (f"[Support] {number} {TITLE}" if english else f"【技术支持】{number}号 {TITLE}")
        assert mail["Content-Language"] == ("en" if english else "zh-CN")
        assert (mail["In-Reply-To"], mail["References"]) == (root, root), "one thread per ticket"
        assert mail["Message-ID"].endswith(f"@{MAIL_DOMAIN}>")
        assert mail.get_body(("html",)) is not None
    [result_notice] = [m for m in mails if kind_of(m) == "result notice"]
    text = text_of(result_notice)
    assert text.startswith(f"您好，您提交的{number}号服务单已处理完成"), "SOP §9's wording"
    assert "退款记录金额为空导致汇总查询中断" in text
    assert "修正汇总查询（8.2.2）并补录空金额记录" in text
    [receipt] = [m for m in mails if kind_of(m) == "receipt"]
    assert "预计响应时间：4 小时内（工作时间）" in text_of(receipt), "P2: first response within 4 working hours"

    # -- the webhook receivers --------------------------------------------------------------------
    robot = system.http.to(WECOM_PATH)
    assert [r.query["key"] for r in robot] == [[WECOM_KEY], [WECOM_KEY]]
    contents = [r.json["markdown"]["content"] for r in robot]
    assert [r.json["msgtype"] for r in robot] == ["markdown", "markdown"]
    assert all(number in c and TITLE in c for c in contents)
    assert sorted("已升级至" in c for c in contents) == [False, True]
    assert sorted("已关闭" in c for c in contents) == [False, True]
    [rating] = system.http.to(FEED_PATH)
    assert {k: rating.json[k] for k in ("event_type", "ticket_number", "template", "locale")} == {
        "event_type": "ticket.rated",
        "ticket_number": number,
        "template": "rating_feed",
        "locale": "zh-CN",
    }
    assert "不满意" in rating.json["text"]
    stamp = rating.headers["X-Supportflow-Timestamp"]
    expected = hmac.new(FEED_SECRET.encode(), f"{stamp}.".encode() + rating.body, hashlib.sha256).hexdigest()
    assert rating.headers["X-Supportflow-Signature"] == f"sha256={expected}"
    assert json.loads(rating.body)["subject"] == f"【技术支持】{number}号 {TITLE}"
    assert system.http.to("/dingtalk/robot/send") == [], "not an operations ticket"

    # -- intake's status as the requester saw it along the way -------------------------------------
    def shown(t: intake_pb2.Ticket) -> tuple[str, str]:
        return types_pb2.TicketStatus.Name(t.status), t.assignee

    assert {key: shown(seen[key]) for key in STATUS_AFTER} == {
        key: (types_pb2.TicketStatus.Name(status), handler) for key, (status, handler, _) in STATUS_AFTER.items()
    }
