"""Every SOP path of the default bundle (bpmn/) runs end to end through the workflow service's
gRPC API (issue #3): tickets enter as intake's `ticket.submitted`, requesters act through intake's
events, agents through ListTasks / ClaimTask / CompleteTask with tokens whose groups are the
tasks' candidate groups, and time moves only when the test moves the service's clock.

The clock starts on Monday 2 March 2026, 09:00 in Shanghai (cn-workdays: 09:00-12:00 and
13:00-18:00; no holiday in March 2026). P0 clocks run on the 24x7 calendar. Each test asserts
what people notice: which tasks appear for whom, forms and four-eyes refusals, the events on the
stream in order, SLA clock states and absolute due times, the end state and the history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2
from supportflow.workflow.v1 import workflow_pb2 as pb
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.workflow.application import handlers
from services.workflow.bootstrap import Workflow, bootstrap
from tests.workflow.conftest import MovableClock, auth, token, workflow_settings
from tests.workflow.intake_side import StreamTail, publish, submit, ticket_number, until

Stub = workflow_pb2_grpc.WorkflowServiceStub
Metadata = tuple[tuple[str, str], ...]

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "bpmn"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Who works the desk; groups are the candidate groups of bpmn/*.bpmn.
OPS = auth(token("ops-1", groups=("operations",)))  # the operations team (system failures)
DEV = auth(token("dev-1", groups=("development",)))  # the development team (software, data)
AGENT = auth(token("agent-1", groups=("tier1",)))
AGENT_2 = auth(token("agent-2", groups=("tier1",)))
ENGINEER = auth(token("engineer-2", groups=("tier2",)))
EXPERT = auth(token("expert-1", groups=("expert",)))
CHANGE_MANAGER = auth(token("cm-1", groups=("change_manager",)))
REVIEWER = auth(token("reviewer-1", groups=("reviewer",)))
LEAD = auth(token("lead-1", roles=("team_lead", "agent"), groups=("team_lead",)))
# agent-1 wearing a second hat: may approve changes and review operations, except their own.
AGENT_AS_APPROVER = auth(token("agent-1", groups=("tier1", "change_manager", "reviewer")))

OPEN_STATES = (pb.TASK_STATE_OPEN, pb.TASK_STATE_CLAIMED)
JUST_AFTER = timedelta(seconds=1)
QUIET = ("task.claimed", "task.completed")  # left out of the stories below


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in March 2026, Shanghai time, as the UTC instant the API returns."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def utc(ts: Timestamp) -> datetime:
    return ts.ToDatetime().replace(tzinfo=UTC)


def variables(**values: Any) -> Struct:
    s = Struct()
    s.update(values)
    return s


@pytest.fixture
async def workflow(fresh_database_url: str, nats_url: str, clock: MovableClock) -> AsyncIterator[Workflow]:
    """The service running the default bundle (bpmn/), as an organisation that never deployed one."""
    service = bootstrap(workflow_settings(fresh_database_url, nats_url, default_bundle_dir=DEFAULT_BUNDLE), clock=clock)
    await service.start()
    yield service
    await service.host.shutdown()


@dataclass
class Desk:
    """One ticket at the service desk, seen through the gRPC API and the event stream."""

    stub: Stub
    nc: Client
    clock: MovableClock
    workflow: Workflow
    tail: StreamTail
    number: str = field(default_factory=ticket_number)

    # -- the requester (through intake's events) ------------------------------------------------

    async def submit(self, **ticket: Any) -> None:
        await submit(self.nc, self.number, **ticket)
        await until(self._instance_or_none, lambda i: i is not None)

    async def requester(self, payload: Any) -> None:
        await publish(self.nc, self.number, payload, at=self.clock.now())

    # -- agents (through gRPC) -------------------------------------------------------------------

    async def tasks(self, *states: pb.TaskState.ValueType, group: str = "") -> list[pb.Task]:
        found = await self.stub.ListTasks(
            pb.ListTasksRequest(ticket_number=self.number, states=states, candidate_group=group), metadata=LEAD
        )
        return list(found.tasks)

    async def open_task(self, element_id: str) -> pb.Task:
        """The ticket's one open task for `element_id`, waiting for it to appear."""

        async def fetch() -> list[pb.Task]:
            return [t for t in await self.tasks(*OPEN_STATES) if t.element_id == element_id]

        found = await until(fetch, bool)
        assert len(found) == 1, f"{element_id}: {found}"
        return found[0]

    async def open_elements(self) -> list[str]:
        return sorted(t.element_id for t in await self.tasks(*OPEN_STATES))

    async def complete(self, element_id: str, who: Metadata, **form: Any) -> pb.Task:
        task = await self.open_task(element_id)
        done = await self.stub.CompleteTask(
            pb.CompleteTaskRequest(task_id=task.task_id, variables=variables(**form)), metadata=who
        )
        assert done.state == pb.TASK_STATE_COMPLETED
        return done

    async def refused(self, element_id: str, who: Metadata, **form: Any) -> grpc.aio.AioRpcError:
        task = await self.open_task(element_id)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await self.stub.CompleteTask(
                pb.CompleteTaskRequest(task_id=task.task_id, variables=variables(**form)), metadata=who
            )
        return refused.value

    # -- what the desk sees ----------------------------------------------------------------------

    async def instance(self) -> pb.ProcessInstance:
        return await self.stub.GetProcessInstance(
            pb.GetProcessInstanceRequest(ticket_number=self.number), metadata=LEAD
        )

    async def _instance_or_none(self) -> pb.ProcessInstance | None:
        try:
            return await self.instance()
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def sla(self, name: str) -> pb.SlaClock:
        [found] = [c for c in (await self.instance()).sla_clocks if c.name == name]
        return found

    async def sla_states(self) -> dict[str, pb.SlaClockState.ValueType]:
        return {c.name: c.state for c in (await self.instance()).sla_clocks}

    async def until_instance(self, done: Any) -> pb.ProcessInstance:
        found = await until(self.instance, done)
        assert done(found), found
        return found

    async def story(self) -> list[str]:
        """The workflow's events for this ticket, in stream order: task.created and sla.* name
        their task or clock; task.claimed / task.completed are left out."""
        out = []
        for e in await self.tail.read():
            if e.ticket_number != self.number or e.producer != "workflow" or e.type in QUIET:
                continue
            if e.type == "task.created":
                out.append(f"task.created:{e.task_created.element_id}")
            elif e.type == "sla.warning":
                out.append(f"sla.warning:{e.sla_warning.clock}")
            elif e.type == "sla.breached":
                out.append(f"sla.breached:{e.sla_breached.clock}")
            else:
                out.append(e.type)
        return out

    async def told(self, expected: list[str]) -> None:
        """The stream says exactly `expected` (waiting for the relay to publish it)."""
        assert await until(self.story, lambda s: s == expected) == expected

    async def said_by(self) -> list[tuple[str, str, str]]:
        """(event type, actor subject, actor role) of every workflow event for this ticket, in stream order."""
        return [
            (e.type, e.actor.subject, e.actor.role)
            for e in await self.tail.read()
            if e.ticket_number == self.number and e.producer == "workflow"
        ]

    async def events(self, event_type: str) -> list[events_pb2.Event]:
        return [e for e in await self.tail.read() if e.ticket_number == self.number and e.type == event_type]

    async def settled(self) -> None:
        """The scheduler has done everything due by now (nothing left to wake before the clock)."""

        async def next_wake() -> datetime | None:
            return await handlers.next_wake_up(self.workflow.deps)

        now = self.clock.now()
        at = await until(next_wake, lambda at: at is None or at > now)
        assert at is None or at > now

    def advance(self, by: timedelta) -> None:
        self.clock.advance(by)

    async def done_by(self) -> list[tuple[str, str]]:
        """(element, who) for every task completed on the ticket, in order."""
        return [
            (h.element_id, h.actor.subject) for h in (await self.instance()).history if h.action == "task.completed"
        ]


@pytest.fixture
async def desk(stub: Stub, nc: Client, clock: MovableClock, workflow: Workflow) -> Desk:
    return Desk(stub, nc, clock, workflow, await StreamTail.open(nc))


def four_eyes(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.FAILED_PRECONDITION and "four-eyes" in (error.details() or "")


# -- shared stretches of the SOP ----------------------------------------------------------------------

P2_FUNCTION_FAILURE = {"problem_type": "software_function", "impact_scope": "single_user", "urgency": "medium"}
CHANGE = {
    "change_type": "configuration",
    "steps": "Snapshot the database\nRaise the pool size\nRestart the report service",
    "risk": "Report service down for a minute",
    "risk_level": "medium",
    "backup_plan": "DB snapshot",
    "rollback_plan": "Restore the previous configuration",
}
OPERATION = {
    "operation_type": "data_modification",
    "operation": "UPDATE invoices SET total = net + tax WHERE month = '2026-02'",
    "operation_result": "42 rows",
}


async def assign(desk: Desk, who: Metadata = DEV, handler: str = "agent-1", priority: str = "P2") -> None:
    await desk.complete("Task_AssignTicket", who, assignee=handler, priority=priority)


async def diagnose(desk: Desk, who: Metadata = AGENT, *, escalate: bool = False) -> None:
    await desk.complete(
        "Task_Diagnose",
        who,
        first_response="We are looking into it",
        diagnosis="The totals query ignores refunds",
        cause_class="functional",
        escalate=escalate,
    )


async def plan(desk: Desk, who: Metadata = AGENT, *, production_change: bool = False, key: bool = False) -> None:
    await desk.complete(
        "Task_PlanSolution",
        who,
        solution_plan="Fix the totals query",
        production_change=production_change,
        key_operation=key,
    )


async def implement(desk: Desk, who: Metadata = AGENT) -> None:
    await desk.complete("Task_Implement", who, implementation_notes="Deployed 1.4.2", rollback_plan="Redeploy 1.4.1")


async def verify_internally(desk: Desk, who: Metadata = AGENT) -> None:
    await desk.complete(
        "Task_VerifyInternally",
        who,
        internal_verification_passed=True,
        verification_evidence="Reproduced in staging, fixed",
        cause="Refunds were not subtracted",
        measures="Query corrected, regression test added",
    )


ESCALATION_FORM = {
    "problem_description": "Totals wrong in every March report",
    "impact": "Finance cannot close the month",
    "solutions_tried": "Cleared the cache: no change\nRe-ran the job: same totals",
    "reason": "Needs a code fix",
    "suggested_team": "development",
}


async def escalate_by_form(desk: Desk) -> None:
    await diagnose(desk, escalate=True)
    await desk.complete("Task_FileEscalationForm", AGENT, **ESCALATION_FORM)


async def tier2_takes_over(desk: Desk) -> None:
    await desk.complete("Task_Tier2Respond", ENGINEER, assignee="engineer-2", tier2_response="Taking over")


async def close(desk: Desk, who: Metadata = AGENT) -> None:
    await desk.complete("Task_CloseTicket", who, closing_summary="Fixed and confirmed", kb_candidate=False)


# -- the paths ----------------------------------------------------------------------------------------


async def test_p0_gets_emergency_contact_and_progress_reports_every_30_minutes_until_resolved(desk: Desk) -> None:
    # Production down for the whole company, reported without logs: P0 is not held for them.
    await desk.submit(
        problem_type="system_failure", impact_scope="company", urgency="critical", missing=("attachment:log",)
    )
    assign_task = await desk.open_task("Task_AssignTicket")
    assert list(assign_task.candidate_groups) == ["operations", "team_lead"]
    assert assign_task.priority == types_pb2.PRIORITY_P0
    assert [t.element_id for t in await desk.tasks(*OPEN_STATES, group="operations")] == ["Task_AssignTicket"]
    assert await desk.tasks(*OPEN_STATES, group="development") == []
    started = await desk.instance()
    assert started.deployment_version == 1, "the default bundle became the organisation's version 1"
    assert started.routing.priority == types_pb2.PRIORITY_P0
    assert list(started.routing.candidate_groups) == ["operations"]
    assert [(r.decision_id, r.rule_id) for r in started.routing.matched_rules] == [
        ("priority", "Rule_Priority_BusinessInterrupted"),
        ("routing", "Rule_Routing_SystemFailure"),
        ("sla_targets", "Rule_SlaTargets_P0"),
    ]
    assign_clock = await desk.sla("assign")
    assert (assign_clock.calendar, assign_clock.state) == ("24x7", pb.SLA_CLOCK_STATE_RUNNING)
    assert utc(assign_clock.due_at) == shanghai(2, 9, 15), "P0: assigned within 15 minutes of submission"
    [classified] = await until(lambda: desk.events("ticket.classified"), bool)
    assert classified.ticket_classified.priority == types_pb2.PRIORITY_P0
    routed = classified.ticket_classified
    assert (routed.team, routed.category, list(routed.candidate_groups), routed.calendar) == (
        "运维团队 Operations",
        "incident",
        ["operations"],
        "24x7",
    )
    assert {k: routed.sla_targets[k] for k in ("assign", "respond", "resolve", "contact")} == {
        "assign": "PT15M",
        "respond": "PT30M",
        "resolve": "PT4H",
        "contact": "PT15M",
    }
    assert [r.rule_id for r in classified.ticket_classified.matched_rules] == [
        "Rule_Priority_BusinessInterrupted",
        "Rule_Routing_SystemFailure",
        "Rule_SlaTargets_P0",
    ]

    # 09:05 the operations team names its senior engineer; the emergency contact is theirs.
    desk.advance(timedelta(minutes=5))
    with pytest.raises(grpc.aio.AioRpcError) as not_ours:
        await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=assign_task.task_id), metadata=DEV)
    assert not_ours.value.code() == grpc.StatusCode.PERMISSION_DENIED
    claimed = await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=assign_task.task_id), metadata=OPS)
    assert claimed.assignee == "ops-1"
    await assign(desk, OPS, handler="ops-1", priority="P0")
    contact = await desk.open_task("Task_EmergencyContact")
    assert (contact.state, contact.assignee) == (pb.TASK_STATE_CLAIMED, "ops-1")
    assert list(contact.candidate_groups) == ["tier1", "team_lead"]
    assert (await desk.sla("assign")).state == pb.SLA_CLOCK_STATE_MET
    contact_clock = await desk.sla("contact")
    assert utc(contact_clock.due_at) == shanghai(2, 9, 20), "emergency contact within 15 minutes"
    missing = await desk.refused("Task_EmergencyContact", OPS, contact_channel="phone")
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "variables.contact_summary" in (missing.details() or "")

    # 09:15 the requester is called.
    desk.advance(timedelta(minutes=10))
    await desk.complete(
        "Task_EmergencyContact", OPS, contact_channel="phone", contact_summary="Failover started; updates every 30 min"
    )
    assert (await desk.sla("contact")).state == pb.SLA_CLOCK_STATE_MET
    diagnosis = await desk.open_task("Task_Diagnose")
    assert diagnosis.assignee == "ops-1"
    assert utc((await desk.sla("respond")).due_at) == shanghai(2, 9, 45)
    assert utc((await desk.sla("resolve")).due_at) == shanghai(2, 13, 15), "resolve within 4 h, 24x7"

    # 09:35, 30 minutes after handling began: the first progress report is due. (The engine's
    # timers fire once their instant has passed, so the clock is moved a second beyond it.)
    desk.advance(timedelta(minutes=20) + JUST_AFTER)
    assert len(await until(lambda: desk.events("ticket.progress_due"), lambda e: len(e) == 1)) == 1
    await diagnose(desk, OPS)
    await plan(desk, OPS)
    await desk.open_task("Task_Implement")
    # ... and every 30 minutes while the fix is being implemented.
    for reports in (2, 3):
        desk.advance(timedelta(minutes=30) + JUST_AFTER)
        assert len(await until(lambda: desk.events("ticket.progress_due"), lambda e, n=reports: len(e) == n)) == reports
    progress = await desk.events("ticket.progress_due")
    reported = [utc(e.occurred_at) for e in progress]
    assert reported == [
        shanghai(2, 9, 35) + JUST_AFTER,
        shanghai(2, 10, 5) + 2 * JUST_AFTER,
        shanghai(2, 10, 35) + 3 * JUST_AFTER,
    ]
    # Numbered across diagnosis and implementation; each says the next one is due 30 minutes later.
    assert [e.ticket_progress_due.sequence for e in progress] == [1, 2, 3]
    assert [utc(e.ticket_progress_due.due_at) for e in progress] == [at + timedelta(minutes=30) for at in reported]
    await implement(desk, OPS)
    await verify_internally(desk, AGENT)  # a second pair of hands confirms the fix in staging
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_EmergencyContact",
            "task.created:Task_Diagnose",
            "ticket.progress_due",
            "task.created:Task_PlanSolution",
            "task.created:Task_Implement",
            "ticket.progress_due",
            "ticket.progress_due",
            "task.created:Task_VerifyInternally",
            "ticket.resolved",
        ]
    )
    [resolved] = await desk.events("ticket.resolved")
    notice = resolved.ticket_resolved
    assert (notice.resolved_by, notice.cause, notice.measures, notice.summary) == (
        "ops-1",  # who implemented the fix; agent-1 only verified it
        "Refunds were not subtracted",
        "Query corrected, regression test added",
        "Fix the totals query",
    )
    waiting = await desk.instance()
    assert "Event_WaitVerification" in [s.element_id for s in waiting.active_steps]
    assert (await desk.sla("resolve")).state == pb.SLA_CLOCK_STATE_PAUSED

    # Resolved: an hour passes without another progress report.
    desk.advance(timedelta(hours=1))
    await desk.settled()
    await desk.requester(events_pb2.TicketVerified(accepted=True, comment="Works again"))
    await until(lambda: desk.events("ticket.survey_requested"), bool)
    assert (await desk.sla("resolve")).state == pb.SLA_CLOCK_STATE_MET
    await desk.requester(events_pb2.TicketRated(rating=types_pb2.RATING_SATISFIED))
    await close(desk, OPS)
    closed = await desk.until_instance(lambda i: i.state == pb.INSTANCE_STATE_COMPLETED)
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_EmergencyContact",
            "task.created:Task_Diagnose",
            "ticket.progress_due",
            "task.created:Task_PlanSolution",
            "task.created:Task_Implement",
            "ticket.progress_due",
            "ticket.progress_due",
            "task.created:Task_VerifyInternally",
            "ticket.resolved",
            "ticket.survey_requested",
            "task.created:Task_CloseTicket",
            "ticket.closed",
        ]
    )
    [closing] = await desk.events("ticket.closed")
    assert (closing.ticket_closed.outcome, closing.ticket_closed.rating) == ("completed", types_pb2.RATING_SATISFIED)
    assert {c.name: c.state for c in closed.sla_clocks} == {
        "assign": pb.SLA_CLOCK_STATE_MET,
        "contact": pb.SLA_CLOCK_STATE_MET,
        "respond": pb.SLA_CLOCK_STATE_MET,
        "diagnose": pb.SLA_CLOCK_STATE_MET,
        "resolve": pb.SLA_CLOCK_STATE_MET,
    }
    assert await desk.done_by() == [
        ("Task_AssignTicket", "ops-1"),
        ("Task_EmergencyContact", "ops-1"),
        ("Task_Diagnose", "ops-1"),
        ("Task_PlanSolution", "ops-1"),
        ("Task_Implement", "ops-1"),
        ("Task_VerifyInternally", "agent-1"),
        ("Task_CloseTicket", "ops-1"),
    ]


async def test_incomplete_information_is_supplemented_before_assignment(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE, missing=("environment.software_version",))
    obtain = await desk.open_task("Task_ObtainMissingInfo")
    assert list(obtain.candidate_groups) == ["tier1"]
    assert await desk.open_elements() == ["Task_ObtainMissingInfo"], "no assignment while information is missing"
    assert (await desk.instance()).sla_clocks == [], "and no assignment clock"
    await desk.told(["ticket.classified", "ticket.info_requested", "task.created:Task_ObtainMissingInfo"])
    [asked] = await desk.events("ticket.info_requested")
    assert list(asked.ticket_info_requested.missing_info) == ["environment.software_version"]
    assert asked.ticket_info_requested.reminder is False
    assert utc(asked.ticket_info_requested.remind_at) == shanghai(2, 10, 0), "a reminder after 1 working hour"

    # Nothing after one working hour: the request goes out again; the task stays.
    desk.advance(timedelta(minutes=61))
    [_, reminded] = await until(lambda: desk.events("ticket.info_requested"), lambda e: len(e) == 2)
    assert reminded.ticket_info_requested.reminder is True
    assert not reminded.ticket_info_requested.HasField("remind_at"), "no further reminder"
    assert list(reminded.ticket_info_requested.missing_info) == ["environment.software_version"]
    assert await desk.open_elements() == ["Task_ObtainMissingInfo"]

    # 10:01 the requester supplies the version through the portal: assignment opens, its clock runs.
    await desk.requester(events_pb2.TicketSupplemented(additional_description="ERP 8.2.1 on Windows 11"))
    assign_task = await desk.open_task("Task_AssignTicket")
    assert list(assign_task.candidate_groups) == ["development", "team_lead"]
    assert await desk.open_elements() == ["Task_AssignTicket"]
    withdrawn = await desk.tasks(pb.TASK_STATE_CANCELLED)
    assert [t.element_id for t in withdrawn] == ["Task_ObtainMissingInfo"]
    assign_clock = await desk.sla("assign")
    assert (assign_clock.calendar, assign_clock.state) == ("cn-workdays", pb.SLA_CLOCK_STATE_RUNNING)
    assert utc(assign_clock.started_at) == shanghai(2, 10, 1)
    assert utc(assign_clock.due_at) == shanghai(2, 11, 1), "P2: assigned within 1 working hour of the information"

    # A tier-1 agent is no member of the development team; the team names its handler.
    with pytest.raises(grpc.aio.AioRpcError) as not_team:
        await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=assign_task.task_id), metadata=AGENT)
    assert not_team.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await assign(desk, DEV, handler="agent-1")
    diagnosis = await desk.open_task("Task_Diagnose")
    assert (diagnosis.state, diagnosis.assignee) == (pb.TASK_STATE_CLAIMED, "agent-1")
    assert (await desk.sla("assign")).state == pb.SLA_CLOCK_STATE_MET
    await desk.told(
        [
            "ticket.classified",
            "ticket.info_requested",
            "task.created:Task_ObtainMissingInfo",
            "ticket.info_requested",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
        ]
    )
    history = (await desk.instance()).history
    assert ("message", "ticket.supplemented", "E1001") in [(h.action, h.detail, h.actor.subject) for h in history]
    assert ("task.withdrawn", "Task_ObtainMissingInfo") in [(h.action, h.element_id) for h in history]
    assert await desk.done_by() == [("Task_AssignTicket", "dev-1")]

    # Who did what: the requester submitted and supplied, the dispatcher assigned; classifying,
    # asking, reminding (a timer) and opening tasks the process did by itself (common.v1.Actor:
    # "system" for automatic steps), also right after a person's action.
    system = ("system", "system")
    assert await desk.said_by() == [
        ("ticket.classified", *system),
        ("ticket.info_requested", *system),
        ("task.created", *system),
        ("ticket.info_requested", *system),  # the reminder
        ("task.created", *system),  # the assignment, once the requester supplied
        ("task.completed", "dev-1", "agent"),
        ("ticket.assigned", "dev-1", "agent"),
        ("task.created", *system),  # the diagnosis, for the handler
    ]
    assert [
        (h.action, h.actor.subject, h.actor.role) for h in history if (h.actor.subject, h.actor.role) != system
    ] == [
        ("started", "E1001", "requester"),  # the submission started it
        ("message", "E1001", "requester"),
        ("task.completed", "dev-1", "agent"),
        ("ticket.assigned", "dev-1", "agent"),  # named by the form dev-1 completed
    ]
    assert [h.action for h in history if (h.actor.subject, h.actor.role) == system][:3] == [
        "path",
        "ticket.classified",
        "ticket.info_requested",
    ], "classified by the process, not by the requester who submitted"
    supplied = [h.action for h in history].index("message")
    assert history[supplied + 1].action == "path", "the supplement first, then what the process did in answer"


async def test_assignment_clock_breach_escalates_to_the_team_lead(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    await desk.open_task("Task_AssignTicket")
    assert utc((await desk.sla("assign")).due_at) == shanghai(2, 10, 0)

    desk.advance(timedelta(minutes=48))  # 80 % of the hour
    [warning] = await until(lambda: desk.events("sla.warning"), bool)
    assert (warning.sla_warning.clock, warning.sla_warning.remaining_seconds) == ("assign", 12 * 60)
    assert await desk.events("ticket.escalated") == []

    desk.advance(timedelta(minutes=12))  # 10:00, nobody assigned it
    [breach] = await until(lambda: desk.events("sla.breached"), bool)
    assert breach.sla_breached.clock == "assign"
    assert utc(breach.sla_breached.due_at) == shanghai(2, 10, 0)
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "sla.warning:assign",
            "sla.breached:assign",
            "ticket.escalated",
        ]
    )
    assert (await desk.sla("assign")).state == pb.SLA_CLOCK_STATE_BREACHED
    # The assignment stays open, now in the team lead's list as well.
    still = await desk.open_task("Task_AssignTicket")
    assert [t.task_id for t in await desk.tasks(*OPEN_STATES, group="team_lead")] == [still.task_id]
    [escalated] = await desk.events("ticket.escalated")
    assert (escalated.actor.subject, escalated.actor.role) == ("system", "system"), "escalated automatically"
    alert = escalated.ticket_escalated
    assert (alert.from_tier, alert.to_tier, alert.automatic) == ("tier1", "team_lead", True)
    assert alert.reason == "Not assigned within the assignment target (SOP 5)"
    assert not alert.HasField("respond_by")

    desk.advance(timedelta(minutes=5))
    await assign(desk, LEAD, handler="agent-1")
    assert (await desk.open_task("Task_Diagnose")).assignee == "agent-1"
    late = await desk.sla("assign")
    assert late.state == pb.SLA_CLOCK_STATE_BREACHED, "assigned late stays a breach"
    assert utc(late.stopped_at) == shanghai(2, 10, 5)
    assert await desk.done_by() == [("Task_AssignTicket", "lead-1")]


async def test_tier1_escalates_to_tier2_with_the_escalation_form(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    # One main handler plus co-handlers (SOP §4).
    await desk.complete("Task_AssignTicket", DEV, assignee="agent-1", co_handlers="ops-1, agent-2", priority="P2")
    await diagnose(desk, escalate=True)
    form = await desk.open_task("Task_FileEscalationForm")
    assert (form.assignee, list(form.candidate_groups)) == ("agent-1", ["tier1"])
    assert {f.id for f in form.form if f.required} == set(ESCALATION_FORM)
    incomplete = await desk.refused(
        "Task_FileEscalationForm", AGENT, problem_description="Totals wrong", suggested_team="accounting"
    )
    assert incomplete.code() == grpc.StatusCode.INVALID_ARGUMENT
    for problem in ("variables.impact", "variables.solutions_tried", "variables.reason", "variables.suggested_team"):
        assert problem in (incomplete.details() or "")
    assert await desk.events("ticket.escalated") == []

    desk.advance(timedelta(minutes=30))  # 09:30
    await desk.complete("Task_FileEscalationForm", AGENT, **ESCALATION_FORM)
    [escalated] = await until(lambda: desk.events("ticket.escalated"), bool)
    # agent-1 filed the form; the escalation that followed is the process's own step.
    said = await desk.said_by()
    filed = said.index(("ticket.escalated", "system", "system"))
    assert said[filed - 1] == ("task.completed", "agent-1", "agent")
    notice = escalated.ticket_escalated
    assert (notice.from_tier, notice.to_tier, notice.automatic, notice.reason) == (
        "tier1",
        "tier2",
        False,
        "Needs a code fix",
    )
    assert (notice.form.problem_description, notice.form.impact, notice.form.reason, notice.form.suggested_team) == (
        "Totals wrong in every March report",
        "Finance cannot close the month",
        "Needs a code fix",
        "development",
    )
    assert list(notice.form.solutions_tried) == ["Cleared the cache: no change", "Re-ran the job: same totals"]
    assert utc(notice.respond_by) == shanghai(2, 10, 30), "the tier2 clock's due time"
    respond = await desk.open_task("Task_Tier2Respond")
    assert (respond.state, list(respond.candidate_groups)) == (pb.TASK_STATE_OPEN, ["tier2"])
    tier2_clock = await desk.sla("tier2")
    assert utc(tier2_clock.due_at) == shanghai(2, 10, 30), "tier 2 responds within 1 h"
    with pytest.raises(grpc.aio.AioRpcError) as tier1:
        await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=respond.task_id), metadata=AGENT)
    assert tier1.value.code() == grpc.StatusCode.PERMISSION_DENIED

    desk.advance(timedelta(minutes=20))
    await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=respond.task_id), metadata=ENGINEER)
    await tier2_takes_over(desk)
    assert (await desk.sla("tier2")).state == pb.SLA_CLOCK_STATE_MET
    investigate = await desk.open_task("Task_Tier2Investigate")
    assert investigate.assignee == "engineer-2", "tier 2 now handles the ticket"
    await desk.complete(
        "Task_Tier2Investigate", ENGINEER, root_cause="Refunds not subtracted", spans_several_modules=False
    )
    assert (await desk.open_task("Task_PlanSolution")).assignee == "engineer-2"
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_FileEscalationForm",
            "ticket.escalated",
            "task.created:Task_Tier2Respond",
            "ticket.assigned",
            "task.created:Task_Tier2Investigate",
            "task.created:Task_PlanSolution",
        ]
    )
    assert await desk.done_by() == [
        ("Task_AssignTicket", "dev-1"),
        ("Task_Diagnose", "agent-1"),
        ("Task_FileEscalationForm", "agent-1"),
        ("Task_Tier2Respond", "engineer-2"),
        ("Task_Tier2Investigate", "engineer-2"),
    ]
    # The ticket's handler: named by the dispatcher, then by the tier-2 engineer taking it over, who
    # keeps the co-handlers. Claiming the response task did not make engineer-2 the handler; the form did.
    assigned = [
        (e.actor.subject, e.ticket_assigned.team, e.ticket_assigned.assignee, list(e.ticket_assigned.co_handlers))
        for e in await desk.events("ticket.assigned")
    ]
    assert assigned == [
        ("dev-1", "开发团队 Development", "agent-1", ["ops-1", "agent-2"]),
        ("engineer-2", "开发团队 Development", "engineer-2", ["ops-1", "agent-2"]),
    ]
    history = [(h.action, h.element_id, h.detail) for h in (await desk.instance()).history]
    assert [h for h in history if h[0] == "ticket.assigned"] == [
        ("ticket.assigned", "Task_AssignTicket", "agent-1, ops-1, agent-2"),
        ("ticket.assigned", "Task_Tier2Respond", "engineer-2, ops-1, agent-2"),
    ]


async def test_an_expert_is_consulted_after_two_working_days(desk: Desk) -> None:
    # Submitted on Thursday 5 March, 15:00: two working days end on Monday at 15:00.
    desk.advance(timedelta(days=3, hours=6))
    await desk.submit(**P2_FUNCTION_FAILURE)
    await assign(desk)
    await escalate_by_form(desk)
    await tier2_takes_over(desk)
    investigate = await desk.open_task("Task_Tier2Investigate")

    desk.advance(shanghai(9, 14, 59) - desk.clock.now())  # Monday 14:59: the weekend did not count
    await desk.settled()
    assert await desk.open_elements() == ["Task_Tier2Investigate"]
    assert await desk.events("sla.warning") == []

    desk.advance(timedelta(minutes=2))  # Monday 15:01
    consult = await desk.open_task("Task_ConsultExpert")
    assert (consult.state, list(consult.candidate_groups)) == (pb.TASK_STATE_OPEN, ["expert"])
    assert await desk.open_elements() == ["Task_ConsultExpert"]
    [gone] = await desk.tasks(pb.TASK_STATE_CANCELLED)
    assert gone.task_id == investigate.task_id, "tier 2's investigation was taken over"
    with pytest.raises(grpc.aio.AioRpcError) as engineer:
        await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=consult.task_id), metadata=ENGINEER)
    assert engineer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await desk.complete("Task_ConsultExpert", EXPERT, expert_advice="Index corruption: rebuild the index")
    assert (await desk.open_task("Task_PlanSolution")).assignee == "engineer-2"
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_FileEscalationForm",
            "ticket.escalated",
            "task.created:Task_Tier2Respond",
            "ticket.assigned",
            "task.created:Task_Tier2Investigate",
            "task.created:Task_ConsultExpert",
            "task.created:Task_PlanSolution",
        ]
    )
    assert (await desk.done_by())[-1] == ("Task_ConsultExpert", "expert-1")
    assert utc((await desk.sla("resolve")).due_at) == shanghai(10, 15, 0), "3 working days from Thursday 15:00"


async def test_change_approval_rejected_then_approved(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    desk.advance(timedelta(minutes=30))
    await assign(desk)  # 09:30: diagnosis opens, the resolve clock starts, due Thursday 09:30
    await diagnose(desk)
    await plan(desk, production_change=True)
    planning = await desk.open_task("Task_PlanChange")
    assert planning.assignee == "agent-1"
    no_rollback = await desk.refused("Task_PlanChange", AGENT, **{**CHANGE, "rollback_plan": ""}, major=False)
    assert no_rollback.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "variables.rollback_plan" in (no_rollback.details() or "")
    await desk.complete("Task_PlanChange", AGENT, **CHANGE, major=False)

    approve = await desk.open_task("Task_ApproveChange")
    assert list(approve.candidate_groups) == ["change_manager"]
    assert list(approve.excluded_subjects) == ["agent-1"]
    [requested] = await until(lambda: desk.events("change.approval_requested"), bool)
    request = requested.change_approval_requested
    assert (request.author, request.round) == ("agent-1", 1)
    assert (request.plan.summary, list(request.plan.steps)) == (
        "Fix the totals query",
        ["Snapshot the database", "Raise the pool size", "Restart the report service"],
    )
    assert (request.plan.risk, request.plan.backup_plan, request.plan.rollback_plan, request.plan.major) == (
        "Report service down for a minute",
        "DB snapshot",
        "Restore the previous configuration",
        False,
    )
    own = await desk.refused("Task_ApproveChange", AGENT_AS_APPROVER, approved=True)
    assert four_eyes(own), own.details()
    await desk.complete("Task_ApproveChange", CHANGE_MANAGER, approved=False, comment="No test")
    [rejected] = await until(lambda: desk.events("change.decided"), bool)
    assert (rejected.change_decided.approved, rejected.change_decided.approver) == (False, "cm-1")
    assert (rejected.change_decided.comment, rejected.change_decided.round) == ("No test", 1)

    assert (await desk.open_task("Task_PlanChange")).assignee == "agent-1", "back to the author for rework"
    await desk.complete("Task_PlanChange", AGENT, **CHANGE, major=False, planned_window="Mon 09:00-09:05")
    own_again = await desk.refused("Task_ApproveChange", AGENT_AS_APPROVER, approved=True)
    assert four_eyes(own_again)
    await desk.complete("Task_ApproveChange", CHANGE_MANAGER, approved=True)
    [_, approved] = await until(lambda: desk.events("change.decided"), lambda e: len(e) == 2)
    assert (approved.change_decided.approved, approved.change_decided.approver) == (True, "cm-1")
    assert (approved.change_decided.comment, approved.change_decided.round) == ("", 2), "no stale comment"
    requests = await until(lambda: desk.events("change.approval_requested"), lambda e: len(e) == 2)
    assert [e.change_approval_requested.round for e in requests] == [1, 2]

    # The requester confirms the plan: the resolve clock waits for them.
    await desk.open_task("Task_ConfirmPlanWithRequester")
    resolve = await desk.sla("resolve")
    assert resolve.state == pb.SLA_CLOCK_STATE_PAUSED
    assert utc(resolve.due_at) == shanghai(5, 9, 30), "3 working days from Monday 09:30, as it stood"
    desk.advance(timedelta(hours=2))
    await desk.complete("Task_ConfirmPlanWithRequester", AGENT, requester_confirmed=True)
    resumed = await desk.sla("resolve")
    assert resumed.state == pb.SLA_CLOCK_STATE_RUNNING
    assert utc(resumed.due_at) == shanghai(5, 11, 30), "the two hours waited for the requester do not count"
    assert (await desk.open_task("Task_Implement")).assignee == "agent-1"

    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_PlanSolution",
            "task.created:Task_PlanChange",
            "change.approval_requested",
            "task.created:Task_ApproveChange",
            "change.decided",
            "task.created:Task_PlanChange",
            "change.approval_requested",
            "task.created:Task_ApproveChange",
            "change.decided",
            "task.created:Task_ConfirmPlanWithRequester",
            "task.created:Task_Implement",
        ]
    )
    decisions = [e.task_completed for e in await desk.events("task.completed")]
    approvals = [d for d in decisions if d.element_id == "Task_ApproveChange"]
    assert [(d.completed_by, d.variables["approved"]) for d in approvals] == [("cm-1", False), ("cm-1", True)]
    assert await desk.done_by() == [
        ("Task_AssignTicket", "dev-1"),
        ("Task_Diagnose", "agent-1"),
        ("Task_PlanSolution", "agent-1"),
        ("Task_PlanChange", "agent-1"),
        ("Task_ApproveChange", "cm-1"),
        ("Task_PlanChange", "agent-1"),
        ("Task_ApproveChange", "cm-1"),
        ("Task_ConfirmPlanWithRequester", "agent-1"),
    ]


async def test_dual_review_is_refused_to_the_performer_and_done_by_another(desk: Desk) -> None:
    await desk.submit(problem_type="data_anomaly", impact_scope="single_user", urgency="medium")
    await assign(desk)
    await diagnose(desk)
    await plan(desk, key=True)
    perform = await desk.open_task("Task_PerformKeyOperation")
    assert perform.assignee == "agent-1"
    await desk.complete("Task_PerformKeyOperation", AGENT, **OPERATION)

    review = await desk.open_task("Task_ReviewKeyOperation")
    assert list(review.candidate_groups) == ["reviewer"]
    assert list(review.excluded_subjects) == ["agent-1"]
    with pytest.raises(grpc.aio.AioRpcError) as claim_own:
        await desk.stub.ClaimTask(pb.ClaimTaskRequest(task_id=review.task_id), metadata=AGENT_AS_APPROVER)
    assert four_eyes(claim_own.value), claim_own.value.details()
    own = await desk.refused("Task_ReviewKeyOperation", AGENT_AS_APPROVER, approved=True)
    assert four_eyes(own)
    assert "agent-1" in (own.details() or "")
    [requested] = await until(lambda: desk.events("review.requested"), bool)
    assert (requested.review_requested.operation, requested.review_requested.performer) == (
        OPERATION["operation"],
        "agent-1",
    )

    # The reviewer sends it back once; the operation is redone and then confirmed.
    await desk.complete("Task_ReviewKeyOperation", REVIEWER, approved=False, comment="WHERE clause too wide")
    assert (await desk.open_task("Task_PerformKeyOperation")).assignee == "agent-1"
    await desk.complete("Task_PerformKeyOperation", AGENT, **{**OPERATION, "operation_result": "12 rows"})
    assert four_eyes(await desk.refused("Task_ReviewKeyOperation", AGENT_AS_APPROVER, approved=True))
    await desk.complete("Task_ReviewKeyOperation", REVIEWER, approved=True)
    verify = await desk.open_task("Task_VerifyInternally")
    assert list(verify.candidate_groups) == ["tier1", "tier2"]
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_PlanSolution",
            "task.created:Task_PerformKeyOperation",
            "review.requested",
            "task.created:Task_ReviewKeyOperation",
            "review.decided",
            "task.created:Task_PerformKeyOperation",
            "review.requested",
            "task.created:Task_ReviewKeyOperation",
            "review.decided",
            "task.created:Task_VerifyInternally",
        ]
    )
    assert (await desk.done_by())[-4:] == [
        ("Task_PerformKeyOperation", "agent-1"),
        ("Task_ReviewKeyOperation", "reviewer-1"),
        ("Task_PerformKeyOperation", "agent-1"),
        ("Task_ReviewKeyOperation", "reviewer-1"),
    ]
    decided = [e.review_decided for e in await until(lambda: desk.events("review.decided"), lambda e: len(e) == 2)]
    assert [(d.approved, d.reviewer, d.comment) for d in decided] == [
        (False, "reviewer-1", "WHERE clause too wide"),
        (True, "reviewer-1", ""),
    ]


async def test_failed_user_verification_returns_to_implementation_then_passes(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    desk.advance(timedelta(minutes=30))
    await assign(desk)  # 09:30: diagnosis opens, the resolve clock starts, due Thursday 09:30
    await diagnose(desk)
    assert utc((await desk.sla("resolve")).due_at) == shanghai(5, 9, 30)
    desk.advance(timedelta(minutes=60))
    await plan(desk)
    await implement(desk)
    await verify_internally(desk)  # 10:30: result notice, the requester tests
    await until(lambda: desk.events("ticket.resolved"), bool)
    assert (await desk.sla("resolve")).state == pb.SLA_CLOCK_STATE_PAUSED

    # Tuesday 11:00 the requester reports it still fails: back to implementation, not to diagnosis.
    desk.advance(shanghai(3, 11, 0) - desk.clock.now())
    await desk.requester(events_pb2.TicketVerified(accepted=False, comment="Still wrong for March"))
    again = await desk.open_task("Task_Implement")
    assert again.assignee == "agent-1"
    assert await desk.open_elements() == ["Task_Implement"]
    resumed = await desk.sla("resolve")
    assert resumed.state == pb.SLA_CLOCK_STATE_RUNNING
    # 23 working hours were left: Tuesday 11:00 + 23 h = Friday 10:00.
    assert utc(resumed.due_at) == shanghai(6, 10, 0)
    await implement(desk)
    await verify_internally(desk, AGENT_2)
    await until(lambda: desk.events("ticket.resolved"), lambda e: len(e) == 2)
    assert (await desk.sla("resolve")).state == pb.SLA_CLOCK_STATE_PAUSED

    desk.advance(timedelta(hours=3))
    await desk.requester(events_pb2.TicketVerified(accepted=True, comment="March is right now"))
    await until(lambda: desk.events("ticket.survey_requested"), bool)
    met = await desk.sla("resolve")
    assert met.state == pb.SLA_CLOCK_STATE_MET
    assert utc(met.stopped_at) == shanghai(3, 14, 0)
    await desk.requester(events_pb2.TicketRated(rating=types_pb2.RATING_NEUTRAL))
    await close(desk)
    await desk.until_instance(lambda i: i.state == pb.INSTANCE_STATE_COMPLETED)
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_PlanSolution",
            "task.created:Task_Implement",
            "task.created:Task_VerifyInternally",
            "ticket.resolved",
            "task.created:Task_Implement",
            "task.created:Task_VerifyInternally",
            "ticket.resolved",
            "ticket.survey_requested",
            "task.created:Task_CloseTicket",
            "ticket.closed",
        ]
    )
    history = (await desk.instance()).history
    verified = [(h.actor.subject, h.actor.role) for h in history if h.detail == "ticket.verified"]
    assert verified == [("E1001", "requester"), ("E1001", "requester")]
    assert [e for e in await desk.done_by() if e[0] == "Task_VerifyInternally"] == [
        ("Task_VerifyInternally", "agent-1"),
        ("Task_VerifyInternally", "agent-2"),
    ]


async def test_dissatisfied_rating_requires_a_revisit(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    await assign(desk)
    await diagnose(desk)
    await plan(desk)
    await implement(desk)
    await verify_internally(desk)
    await until(lambda: desk.events("ticket.resolved"), bool)
    await desk.requester(events_pb2.TicketVerified(accepted=True))
    [survey] = await until(lambda: desk.events("ticket.survey_requested"), bool)
    # 3 working days from Monday 09:00: until Wednesday's close (as the rating timeout)
    assert utc(survey.ticket_survey_requested.respond_by) == shanghai(4, 18, 0)
    await desk.requester(events_pb2.TicketRated(rating=types_pb2.RATING_DISSATISFIED, comment="Took too long"))
    [revisit_required] = await until(lambda: desk.events("ticket.revisit_required"), bool)
    assert revisit_required.ticket_revisit_required.rating_comment == "Took too long"

    revisit = await desk.open_task("Task_Revisit")
    assert (revisit.state, list(revisit.candidate_groups)) == (pb.TASK_STATE_OPEN, ["tier1", "team_lead"])
    assert await desk.open_elements() == ["Task_Revisit"], "no closing before the revisit"
    revisit_clock = await desk.sla("revisit")
    assert revisit_clock.state == pb.SLA_CLOCK_STATE_RUNNING
    assert utc(revisit_clock.due_at) == shanghai(3, 14, 0), "12 working hours from Monday 09:00"
    assert utc(revisit_required.ticket_revisit_required.due_at) == utc(revisit_clock.due_at)
    no_outcome = await desk.refused("Task_Revisit", AGENT_2, revisit_notes="Called")
    assert no_outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "variables.revisit_outcome" in (no_outcome.details() or "")

    desk.advance(timedelta(hours=2))
    await desk.complete(
        "Task_Revisit", AGENT_2, revisit_notes="Apologised, explained the fix", revisit_outcome="concern_resolved"
    )
    assert (await desk.sla("revisit")).state == pb.SLA_CLOCK_STATE_MET
    assert (await desk.open_task("Task_CloseTicket")).assignee == "agent-1"
    await close(desk)
    done = await desk.until_instance(lambda i: i.state == pb.INSTANCE_STATE_COMPLETED)
    assert done.ended_at.ToDatetime().replace(tzinfo=UTC) == shanghai(2, 11, 0)
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_Diagnose",
            "task.created:Task_PlanSolution",
            "task.created:Task_Implement",
            "task.created:Task_VerifyInternally",
            "ticket.resolved",
            "ticket.survey_requested",
            "ticket.revisit_required",
            "task.created:Task_Revisit",
            "task.created:Task_CloseTicket",
            "ticket.closed",
        ]
    )
    [closed] = await desk.events("ticket.closed")
    assert (closed.ticket_closed.outcome, closed.ticket_closed.rating) == ("completed", types_pb2.RATING_DISSATISFIED)
    assert (await desk.done_by())[-2:] == [("Task_Revisit", "agent-2"), ("Task_CloseTicket", "agent-1")]


async def test_cancelling_ends_the_ticket_anywhere_before_closing(desk: Desk) -> None:
    await desk.submit(problem_type="system_failure", impact_scope="company", urgency="critical")
    await assign(desk, OPS, handler="ops-1", priority="P0")
    await desk.complete("Task_EmergencyContact", OPS, contact_channel="phone", contact_summary="On it")
    diagnosis = await desk.open_task("Task_Diagnose")
    assert await desk.sla_states() == {
        "assign": pb.SLA_CLOCK_STATE_MET,
        "contact": pb.SLA_CLOCK_STATE_MET,
        "respond": pb.SLA_CLOCK_STATE_RUNNING,
        "diagnose": pb.SLA_CLOCK_STATE_RUNNING,
        "resolve": pb.SLA_CLOCK_STATE_RUNNING,
    }

    desk.advance(timedelta(minutes=10))
    await desk.requester(events_pb2.TicketCancelled(reason="Duplicate of TS20260302000007"))
    cancelled = await desk.until_instance(lambda i: i.state == pb.INSTANCE_STATE_CANCELLED)
    assert utc(cancelled.ended_at) == shanghai(2, 9, 10)
    assert list(cancelled.active_steps) == []
    assert {c.name: c.state for c in cancelled.sla_clocks} == {
        "assign": pb.SLA_CLOCK_STATE_MET,
        "contact": pb.SLA_CLOCK_STATE_MET,
        "respond": pb.SLA_CLOCK_STATE_CANCELLED,
        "diagnose": pb.SLA_CLOCK_STATE_CANCELLED,
        "resolve": pb.SLA_CLOCK_STATE_CANCELLED,
    }
    assert await desk.open_elements() == []
    [withdrawn] = await desk.tasks(pb.TASK_STATE_CANCELLED)
    assert withdrawn.task_id == diagnosis.task_id
    with pytest.raises(grpc.aio.AioRpcError) as too_late:
        await desk.stub.CompleteTask(
            pb.CompleteTaskRequest(task_id=diagnosis.task_id, variables=variables(first_response="x")), metadata=OPS
        )
    assert too_late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cancelled" in (too_late.value.details() or "")
    ended = [(h.action, h.detail, h.actor.subject) for h in cancelled.history]
    assert ("message", "ticket.cancelled", "E1001") in ended, "the requester cancelled it"
    assert ("cancelled", "", "system") in ended
    assert "completed" not in [action for action, _, _ in ended]

    # No progress reports, breaches or closing after the cancellation.
    desk.advance(timedelta(hours=5))
    await desk.settled()
    await desk.told(
        [
            "ticket.classified",
            "task.created:Task_AssignTicket",
            "ticket.assigned",
            "task.created:Task_EmergencyContact",
            "task.created:Task_Diagnose",
        ]
    )


async def test_a_team_lead_cancels_through_the_api(desk: Desk) -> None:
    await desk.submit(**P2_FUNCTION_FAILURE)
    await assign(desk)
    await desk.open_task("Task_Diagnose")
    with pytest.raises(grpc.aio.AioRpcError) as agent:
        await desk.stub.CancelProcessInstance(
            pb.CancelProcessInstanceRequest(ticket_number=desk.number, reason="mine"), metadata=AGENT
        )
    assert agent.value.code() == grpc.StatusCode.PERMISSION_DENIED

    desk.advance(timedelta(hours=1))
    cancelled = await desk.stub.CancelProcessInstance(
        pb.CancelProcessInstanceRequest(ticket_number=desk.number, reason="Raised twice"), metadata=LEAD
    )
    assert cancelled.state == pb.INSTANCE_STATE_CANCELLED
    assert utc(cancelled.ended_at) == shanghai(2, 10, 0)
    assert {c.name: c.state for c in cancelled.sla_clocks} == {
        "assign": pb.SLA_CLOCK_STATE_MET,
        "respond": pb.SLA_CLOCK_STATE_CANCELLED,
        "diagnose": pb.SLA_CLOCK_STATE_CANCELLED,
        "resolve": pb.SLA_CLOCK_STATE_CANCELLED,
    }
    assert await desk.open_elements() == []
    ended = [(h.action, h.actor.subject, h.detail) for h in cancelled.history if h.action in ("completed", "cancelled")]
    assert ("cancelled", "lead-1", "Raised twice") in ended
    assert "completed" not in [action for action, _, _ in ended]

    # The requester's own cancellation, arriving later, changes nothing.
    await desk.requester(events_pb2.TicketCancelled(reason="Never mind"))
    await until(lambda: _handled(desk.workflow), lambda n: n >= 2)
    assert (await desk.instance()).state == pb.INSTANCE_STATE_CANCELLED
    await desk.settled()
    await desk.told(
        ["ticket.classified", "task.created:Task_AssignTicket", "ticket.assigned", "task.created:Task_Diagnose"]
    )


async def _handled(workflow: Workflow) -> int:
    return workflow.consumer.handled
