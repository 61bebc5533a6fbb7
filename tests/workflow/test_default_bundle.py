"""The default bundle (bpmn/) parses, validates and runs every SOP path in bare SpiffWorkflow.

Each test drives one instance of `support_ticket` the way the workflow service will: user tasks
are completed with form data (checked against the task's camunda:formData), requester actions
and SLA breaches arrive as messages, timers fire because the engine's clock is moved. The events
the process throws (`workflow.get_events()`, collected after every step) and the user tasks that
appear are asserted against SOP.md.

What the service adds to the engine is taken from the service where it is a plain function, and
emulated otherwise:

* `due(duration, calendar)` for timer expressions is the service's own (`diagram_due`), given to
  the sandbox as a name, on the calendar files of the bundle.
* Time: the service's engine clock (`use_clock`) replaces `datetime.now` in SpiffWorkflow's timer
  module; the tests move that clock instead of waiting.
* Message variables reach the process as variables of the same names (the Camunda message
  definition alone stores a payload under one variable): `send` merges them into the data of the
  task that caught the message before it runs, as the service's runner does.
* Completing a user task also sets `completed_by` and `<TaskId>_completed_by` (who completed it),
  as the service's `complete_task` does; the diagrams' scripts read them (approver, reviewer, ...).
* The events thrown are encoded by the service's codec (`event_codec.encode_thrown`) from the
  variables at the throw event, so `sent()` shows the payloads users will see.

The last test runs the main path through the service's runner (`SpiffProcessEngine`) as well, and
another one checks that the service's deploy validation accepts the bundle without a warning.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import etree  # type: ignore[import-untyped]
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from services.workflow.adapters import event_codec
from services.workflow.adapters.engine import clock as engine_clock
from services.workflow.adapters.engine.bundle import compile_bundle, read_bundle_dir
from services.workflow.adapters.engine.runner import SpiffProcessEngine
from services.workflow.adapters.runtimes import diagram_due
from services.workflow.adapters.sandbox import SandboxedScriptEngine
from services.workflow.application.engine import ThrownEvent
from services.workflow.domain.calendar import BusinessCalendar
from services.workflow.domain.calendar_format import parse_calendar

BUNDLE = Path(__file__).resolve().parents[2] / "bpmn"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2025, 3, 3, 10, 0, tzinfo=SHANGHAI)  # an ordinary working Monday
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
# bpmn/README.md: events out, messages in
EVENTS_OUT = {
    *("ticket.classified", "ticket.info_requested", "ticket.escalated", "ticket.progress_due"),
    *("change.approval_requested", "change.decided", "review.requested", "review.decided"),
    *("ticket.resolved", "ticket.survey_requested", "ticket.revisit_required", "ticket.closed"),
}
MESSAGES_IN = {"ticket.supplemented", "ticket.verified", "ticket.rated", "ticket.cancelled"}
GROUPS = {"${candidate_group}", "tier1", "tier2", "expert", "team_lead", "change_manager", "reviewer"}


# -- the bundle, parsed once -------------------------------------------------------------------


def _parse_bundle() -> CamundaParser:
    parser = CamundaParser(validator=BpmnValidator())  # BPMN 2.0 and DMN 1.3 XSDs
    parser.add_bpmn_files(sorted(str(p) for p in BUNDLE.glob("*.bpmn")))
    parser.add_dmn_files(sorted(str(p) for p in (BUNDLE / "dmn").glob("*.dmn")))
    return parser


PARSER = _parse_bundle()
SPEC = PARSER.get_spec("support_ticket")
SUBPROCESS_SPECS = PARSER.get_subprocess_specs("support_ticket")
CALENDARS: dict[str, BusinessCalendar] = {
    p.stem: parse_calendar(p.read_text(encoding="utf-8"), source=p.name) for p in (BUNDLE / "calendars").glob("*.toml")
}
CATALOGUE = tomllib.loads((BUNDLE / "organisations.toml").read_text(encoding="utf-8"))["defaults"]
BPMN_DOCS = {p.name: etree.parse(str(p)) for p in BUNDLE.glob("*.bpmn")}
DMN_DOCS = {p.name: etree.parse(str(p)) for p in (BUNDLE / "dmn").glob("*.dmn")}


def _element(element_id: str) -> Any:
    for doc in BPMN_DOCS.values():
        found = doc.xpath(f'//*[@id="{element_id}"]')
        if found:
            return found[0]
    raise KeyError(element_id)


def properties(element_id: str) -> dict[str, str]:
    """camunda:properties of any flow node, read from the XML (the bare parser keeps them on tasks only)."""
    nodes = _element(element_id).xpath("./bpmn:extensionElements/camunda:properties/camunda:property", namespaces=NS)
    return {n.get("name"): n.get("value") for n in nodes}


def candidate_groups(element_id: str) -> str:
    return str(_element(element_id).get(f"{{{NS['camunda']}}}candidateGroups"))


# -- clock, business time and the script engine ---------------------------------------------------


@dataclass
class Clock:
    now: datetime


def script_engine(clock: Clock) -> SandboxedScriptEngine:
    return SandboxedScriptEngine(names={"due": diagram_due(CALENDARS, lambda: clock.now)})


@pytest.fixture
def clock() -> Iterator[Clock]:
    current = Clock(MONDAY.astimezone(UTC))
    engine_clock.use_clock(lambda: current.now)
    yield current
    engine_clock.use_clock(lambda: datetime.now(UTC))


# -- driving an instance ----------------------------------------------------------------------------


def ticket_data(**overrides: Any) -> dict[str, Any]:
    """ticket.submitted's variables (bpmn/README.md); by default a P2 function failure."""
    data: dict[str, Any] = {
        "ticket_number": "TS20250303000001",
        "organization": "acme",
        "title": "Monthly report shows wrong totals",
        "problem_type": "software_function",
        "impact_scope": "single_user",
        "urgency": "medium",
        "vip": False,
        "channel": "portal",
        "requester_id": "E1001",
        "info_incomplete": False,
        "missing_info": [],
        "submitted_at": "2025-03-03T10:00:00+08:00",
    }
    data.update(overrides)
    return data


@dataclass
class Ticket:
    clock: Clock
    workflow: BpmnWorkflow
    emitted: list[str] = field(default_factory=list)
    thrown: list[ThrownEvent] = field(default_factory=list)

    @classmethod
    def start(cls, clock: Clock, **overrides: Any) -> Ticket:
        workflow = BpmnWorkflow(SPEC, SUBPROCESS_SPECS, script_engine=script_engine(clock))
        workflow.get_tasks(state=TaskState.READY)[0].data.update(ticket_data(**overrides))
        ticket = cls(clock, workflow)
        ticket._step()
        return ticket

    def _step(self) -> None:
        self.workflow.do_engine_steps(did_complete_task=self._record_throw)
        self.emitted.extend(event.event_definition.name for event in self.workflow.get_events())

    def _record_throw(self, task: Task) -> None:
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(task.task_spec, ThrowingEvent) and isinstance(definition, MessageEventDefinition):
            self.thrown.append(ThrownEvent(definition.name, task.task_spec.bpmn_id, dict(task.data)))

    def sent(self, name: str) -> list[Any]:
        """Payloads of every `name` event thrown so far, as the service's codec encodes them."""
        events = [
            event_codec.encode_thrown(t, org="acme", ticket_number="TS20250303000001", occurred_at=self.clock.now)
            for t in self.thrown
            if t.name == name
        ]
        return [getattr(e, e.WhichOneof("payload")) for e in events]

    def events(self) -> list[str]:
        """Message names thrown since the last call."""
        taken, self.emitted = self.emitted, []
        return taken

    def ready(self) -> list[str]:
        return sorted(t.task_spec.bpmn_id for t in self.workflow.get_tasks(state=TaskState.READY, manual=True))

    def task(self, bpmn_id: str) -> Task:
        (task,) = [
            t for t in self.workflow.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == bpmn_id
        ]
        return task

    def complete(self, bpmn_id: str, *, by: str = "li.lei", **form: Any) -> None:
        """Complete a user task with form data, checked against its camunda:formData as the service will,
        by `by` (who the service records in `completed_by` and `<TaskId>_completed_by`)."""
        task = self.task(bpmn_id)
        fields = {f.id: f for f in task.task_spec.form.fields}
        assert set(form) <= set(fields), f"{bpmn_id} has no fields {set(form) - set(fields)}"
        missing = [name for name, f in fields.items() if f.has_validation("required") and form.get(name) is None]
        assert not missing, f"{bpmn_id}: required fields missing: {missing}"
        for name, value in form.items():
            if fields[name].type == "enum":
                assert value in {o.id for o in fields[name].options}, f"{bpmn_id}.{name}: {value!r}"
            if fields[name].type == "boolean":
                assert isinstance(value, bool), f"{bpmn_id}.{name}: {value!r}"
        task.data.update(form)
        task.data.update({f"{bpmn_id}_completed_by": by, "completed_by": by})
        task.run()
        self._step()

    def send(self, message: str, **variables: Any) -> None:
        """Deliver a message; its variables land in the catching task's data, as the service delivers them."""
        event = BpmnEvent(MessageEventDefinition(message), {"payload": variables, "result_var": None})
        catchers = [
            t
            for t in self.workflow.get_tasks(state=TaskState.WAITING)
            if hasattr(t.task_spec, "catches") and t.task_spec.catches(t, event)
        ]
        self.workflow.send_event(event)
        for task in catchers:
            task.data.update(variables)
        self._step()

    def advance(self, **delta: float) -> None:
        self.clock.now += timedelta(**delta)
        self.advance_to(self.clock.now)

    def advance_to(self, moment: datetime) -> None:
        self.clock.now = moment.astimezone(UTC)
        self.workflow.refresh_timers()
        self._step()

    def timer_due(self, bpmn_id: str) -> datetime:
        (task,) = [t for t in self.workflow.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == bpmn_id]
        value = task.task_spec.event_definition.details(task).value
        return datetime.fromisoformat(value)

    @property
    def data(self) -> dict[str, Any]:
        """Data of the first ready user task (what its form would show)."""
        data: dict[str, Any] = self.workflow.get_tasks(state=TaskState.READY, manual=True)[0].data
        return data

    # -- common stretches of the SOP --------------------------------------------------------
    def assign(self, assignee: str = "li.lei", **form: Any) -> None:
        form.setdefault("priority", self.task("Task_AssignTicket").data["priority"])
        self.complete("Task_AssignTicket", assignee=assignee, **form)

    def diagnose(self, *, escalate: bool = False) -> None:
        self.complete(
            "Task_Diagnose",
            first_response="We are looking into it.",
            diagnosis="Totals query ignores refunds",
            cause_class="functional",
            escalate=escalate,
        )

    def plan(self, *, production_change: bool = False, key_operation: bool = False) -> None:
        self.complete(
            "Task_PlanSolution",
            solution_plan="Fix the totals query",
            production_change=production_change,
            key_operation=key_operation,
        )

    def implement(self) -> None:
        self.complete("Task_Implement", implementation_notes="Deployed fix 1.4.2", rollback_plan="Redeploy 1.4.1")

    def verify_internally(self, *, passed: bool = True) -> None:
        self.complete(
            "Task_VerifyInternally",
            internal_verification_passed=passed,
            verification_evidence="Reproduced in test, fixed",
            cause="Refunds were not subtracted",
            measures="Query corrected, regression test added",
        )

    def to_resolved(self) -> None:
        """From a fresh P2 ticket to the result notice, the shortest way."""
        self.assign()
        self.diagnose()
        self.plan()
        self.implement()
        self.verify_internally()

    def close(self) -> None:
        self.complete(
            "Task_CloseTicket", closing_summary="Fixed and confirmed", kb_candidate=True, kb_keywords="report"
        )


def test_bundle_files_are_the_readme_table() -> None:
    assert sorted(p.name for p in BUNDLE.glob("*.bpmn")) == [
        "change-approval.bpmn",
        "classify.bpmn",
        "dual-review.bpmn",
        "escalate.bpmn",
        "support-ticket.bpmn",
    ]
    assert sorted(DMN_DOCS) == ["priority.dmn", "routing.dmn", "sla-targets.dmn"]
    bundle = tomllib.loads((BUNDLE / "bundle.toml").read_text(encoding="utf-8"))
    assert bundle["main_process"] == "support_ticket"
    assert bundle["default_calendar"] in CALENDARS
    processes = {doc.getroot().xpath("./bpmn:process", namespaces=NS)[0].get("id") for doc in BPMN_DOCS.values()}
    assert processes == {"support_ticket", "classify", "escalate", "change_approval", "dual_review"}
    assert set(SUBPROCESS_SPECS) >= {"classify", "escalate", "change_approval", "dual_review"}


# -- the paths of SOP.md ---------------------------------------------------------------------------


def test_p0_gets_emergency_contact_and_progress_reports_until_resolved(clock: Clock) -> None:
    t = Ticket.start(
        clock,
        problem_type="system_failure",
        impact_scope="company",
        urgency="critical",
        info_incomplete=True,  # P0 is not held for missing information
        missing_info=["attachment:screenshot|log"],
    )
    assert t.events() == ["ticket.classified"]
    assert t.ready() == ["Task_AssignTicket"]
    assert {k: t.data[k] for k in ("priority", "calendar", "assign_within", "respond_within", "resolve_within")} == {
        "priority": "P0",
        "calendar": "24x7",
        "assign_within": "PT15M",
        "respond_within": "PT30M",
        "resolve_within": "PT4H",
    }
    assert t.data["candidate_group"] == "operations"

    t.assign("zhang.wei")
    assert t.ready() == ["Task_EmergencyContact"]
    contact = t.task("Task_EmergencyContact")
    assert contact.task_spec.extensions == {"sla.start": "contact:contact_within"}
    assert contact.data["contact_within"] == "PT15M"
    assert t.events() == []

    t.advance(minutes=29)
    assert t.events() == []
    t.advance(minutes=2)  # 31 minutes into handling: the first report is due
    assert t.events() == ["ticket.progress_due"]
    reported_at = [t.clock.now]
    t.complete(
        "Task_EmergencyContact", contact_channel="phone", contact_summary="Failover started, updates every 30 min"
    )
    assert t.ready() == ["Task_Diagnose"]
    t.advance(minutes=30)
    assert t.events() == ["ticket.progress_due"]
    reported_at.append(t.clock.now)
    t.diagnose()
    t.plan()
    assert t.ready() == ["Task_Implement"]
    t.advance(minutes=31)  # the implementation phase reports too
    assert t.events() == ["ticket.progress_due"]
    reported_at.append(t.clock.now)
    # numbered across the ticket (not per phase), each saying when the next one is due
    reports = t.sent("ticket.progress_due")
    assert [r.sequence for r in reports] == [1, 2, 3]
    assert [r.due_at.ToDatetime(tzinfo=UTC) for r in reports] == [at + timedelta(minutes=30) for at in reported_at]
    t.implement()
    t.verify_internally()
    assert t.events() == ["ticket.resolved"]
    t.advance(hours=3)  # resolved: no more progress reports
    assert t.events() == []

    t.send("ticket.verified", verification_accepted=True, verification_comment="Works again")
    assert t.events() == ["ticket.survey_requested"]
    t.send("ticket.rated", rating="satisfied", rating_comment="")
    t.close()
    assert t.events() == ["ticket.closed"]
    assert t.workflow.completed


def test_incomplete_information_holds_assignment_until_supplemented(clock: Clock) -> None:
    friday_evening = datetime(2025, 3, 7, 17, 30, tzinfo=SHANGHAI)
    clock.now = friday_evening.astimezone(UTC)
    t = Ticket.start(clock, info_incomplete=True, missing_info=["environment.software_version"])
    assert t.events() == ["ticket.classified", "ticket.info_requested"]
    assert t.ready() == ["Task_ObtainMissingInfo"]  # no assignment (and no assignment clock) yet
    assert candidate_groups("Task_ObtainMissingInfo") == "tier1"

    # the reminder counts working time: half an hour left on Friday, half an hour on Monday
    monday_0930 = datetime(2025, 3, 10, 9, 30, tzinfo=SHANGHAI)
    assert t.timer_due("Boundary_InfoReminder") == monday_0930
    [asked] = t.sent("ticket.info_requested")
    assert (list(asked.missing_info), asked.reminder) == (["environment.software_version"], False)
    assert asked.remind_at.ToDatetime(tzinfo=UTC) == monday_0930
    t.advance_to(datetime(2025, 3, 9, 20, 0, tzinfo=SHANGHAI))
    assert t.events() == []
    t.advance_to(monday_0930 + timedelta(minutes=1))
    assert t.events() == ["ticket.info_requested"]  # re-emitted once, the task stays open
    reminded = t.sent("ticket.info_requested")[1]
    assert (reminded.reminder, reminded.HasField("remind_at")) == (True, False)  # no further reminder
    assert t.ready() == ["Task_ObtainMissingInfo"]

    t.send("ticket.supplemented")
    assert t.ready() == ["Task_AssignTicket"]
    assert t.task("Task_AssignTicket").task_spec.extensions == {"sla.start": "assign:assign_within"}
    assert t.data["assign_within"] == "PT1H"
    t.advance(hours=5)
    assert t.events() == []  # the reminder went with the gate


def test_tier1_can_record_missing_information_itself(clock: Clock) -> None:
    t = Ticket.start(clock, info_incomplete=True, missing_info=["occurred_at"])
    t.events()
    t.complete("Task_ObtainMissingInfo", supplied_info="Started 2025-03-03 08:10", contact_channel="phone")
    assert t.ready() == ["Task_AssignTicket"]


def test_team_lead_corrects_priority_and_sla_targets_follow(clock: Clock) -> None:
    t = Ticket.start(clock)
    assert t.events() == ["ticket.classified"]
    assert (t.data["priority"], t.data["resolve_within"]) == ("P2", "P3D")
    t.assign(priority="P1")
    assert t.events() == ["ticket.classified"]
    assert (t.data["priority"], t.data["sla_priority"], t.data["resolve_within"]) == ("P1", "P1", "EOD")


def test_assignment_clock_breach_escalates_automatically(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.events()
    t.advance(hours=1)
    t.send("sla.breached.assign")
    assert t.events() == ["ticket.escalated"]
    [escalated] = t.sent("ticket.escalated")
    assert (escalated.from_tier, escalated.to_tier, escalated.automatic) == ("tier1", "team_lead", True)
    assert escalated.reason.startswith("Not assigned within")
    assert t.ready() == ["Task_AssignTicket"]  # still to be assigned, now with the team lead alerted
    assert "team_lead" in candidate_groups("Task_AssignTicket")
    t.assign()
    assert t.ready() == ["Task_Diagnose"]
    with pytest.raises(WorkflowException, match="not waiting"):
        t.send("sla.breached.assign")


def test_response_clock_breach_hands_the_ticket_to_tier2_without_the_form(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.assign()
    t.advance(hours=2)  # a P2 ticket gets no progress reports (its cycle is R0)
    assert t.events() == ["ticket.classified"]
    t.send("sla.breached.respond")
    assert t.events() == ["ticket.escalated"]
    assert t.ready() == ["Task_Tier2Respond"]
    assert t.data["escalation_trigger"] == "sla.breached.respond"
    [escalated] = t.sent("ticket.escalated")
    assert (escalated.from_tier, escalated.to_tier, escalated.automatic) == ("tier1", "tier2", True)
    assert escalated.reason.startswith("No first response")
    assert not escalated.form.problem_description  # no form filed


def test_tier1_escalates_to_tier2_with_the_escalation_form(clock: Clock) -> None:
    t = Ticket.start(clock)
    assert t.events() == ["ticket.classified"]
    t.assign()
    assert properties("Task_Diagnose")["sla.start"] == (
        "respond:respond_within,diagnose:diagnose_within,resolve:resolve_within"
    )
    t.diagnose(escalate=True)
    assert t.ready() == ["Task_FileEscalationForm"]
    form = {f.id for f in t.task("Task_FileEscalationForm").task_spec.form.fields}
    # SOP §6, named like ticket.escalated's form
    assert form == {"problem_description", "impact", "solutions_tried", "reason", "suggested_team"}
    assert t.events() == []
    t.complete(
        "Task_FileEscalationForm",
        problem_description="Totals wrong for all March reports",
        impact="Finance blocked",
        solutions_tried="Cleared cache (no change)\nRe-ran job (same totals)",
        reason="Needs a code fix",
        suggested_team="development",
    )
    assert t.events() == ["ticket.escalated"]
    [escalated] = t.sent("ticket.escalated")
    assert (escalated.from_tier, escalated.to_tier, escalated.automatic) == ("tier1", "tier2", False)
    assert (escalated.reason, escalated.form.reason, escalated.form.impact) == (
        "Needs a code fix",
        "Needs a code fix",
        "Finance blocked",
    )
    assert list(escalated.form.solutions_tried) == ["Cleared cache (no change)", "Re-ran job (same totals)"]
    assert escalated.respond_by.ToDatetime(tzinfo=UTC) == t.clock.now + timedelta(hours=1)  # Monday 11:00
    assert t.ready() == ["Task_Tier2Respond"]
    respond = t.task("Task_Tier2Respond")
    assert respond.task_spec.extensions == {"sla.start": "tier2:tier2_respond_within"}
    assert respond.data["tier2_respond_within"] == "PT1H"
    assert candidate_groups("Task_Tier2Respond") == "tier2"
    t.complete("Task_Tier2Respond", assignee="wang.wu", tier2_response="Taking over", workaround_applied=False)
    assert properties("Event_Tier2Responded") == {"sla.stop": "tier2"}
    t.complete("Task_Tier2Investigate", root_cause="Refunds not subtracted", spans_several_modules=False)
    assert t.ready() == ["Task_PlanSolution"]
    assert t.data["assignee"] == "wang.wu"  # tier 2 now handles the ticket


def test_expert_is_consulted_after_two_working_days(clock: Clock) -> None:
    thursday = datetime(2025, 9, 25, 15, 0, tzinfo=SHANGHAI)
    clock.now = thursday.astimezone(UTC)
    t = Ticket.start(clock)
    t.assign()
    t.diagnose(escalate=True)
    t.complete(
        "Task_FileEscalationForm",
        problem_description="Crash on save",
        impact="One user cannot save",
        solutions_tried="Reinstalled",
        reason="Beyond tier 1",
        suggested_team="development",
    )
    t.complete("Task_Tier2Respond", assignee="wang.wu", tier2_response="Looking")
    assert t.ready() == ["Task_Tier2Investigate"]
    # Friday is the first working day, Saturday is off, Sunday 28 September 2025 is a make-up working day
    sunday_1500 = datetime(2025, 9, 28, 15, 0, tzinfo=SHANGHAI)
    assert t.timer_due("Boundary_ExpertDue") == sunday_1500
    t.advance_to(sunday_1500 - timedelta(minutes=1))
    assert t.ready() == ["Task_Tier2Investigate"]
    t.advance_to(sunday_1500 + timedelta(minutes=1))
    assert t.ready() == ["Task_ConsultExpert"]
    assert candidate_groups("Task_ConsultExpert") == "expert"
    t.complete("Task_ConsultExpert", expert_advice="Index corruption; rebuild")
    assert t.ready() == ["Task_PlanSolution"]


def test_several_modules_call_for_an_expert_at_once(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.assign()
    t.send("sla.breached.respond")
    t.complete("Task_Tier2Respond", assignee="wang.wu", tier2_response="Looking")
    t.complete("Task_Tier2Investigate", root_cause="Billing and reporting disagree", spans_several_modules=True)
    assert t.ready() == ["Task_ConsultExpert"]


def test_change_approval_rejected_then_approved(clock: Clock) -> None:
    t = Ticket.start(clock)
    assert t.events() == ["ticket.classified"]
    t.assign()
    t.diagnose()
    t.plan(production_change=True)
    assert t.ready() == ["Task_PlanChange"]
    fields = {f.id for f in t.task("Task_PlanChange").task_spec.form.fields}
    # named like change.approval_requested's plan
    assert {"steps", "risk", "backup_plan", "rollback_plan", "major"} <= fields
    change = {
        "change_type": "configuration",
        "steps": "Snapshot the database\nChange the pool size\nRestart",
        "risk": "Short outage of the report service",
        "risk_level": "medium",
        "backup_plan": "DB snapshot",
        "rollback_plan": "Restore previous config",
    }
    t.complete("Task_PlanChange", major=True, **change)
    assert t.ready() == ["Task_ProveInTest"]  # a major change is proven in a test environment first
    t.complete("Task_ProveInTest", test_environment="staging", test_result="ok", test_passed=True)
    assert t.events() == ["change.approval_requested"]
    approve = t.task("Task_ApproveChange")
    assert approve.task_spec.extensions == {"fourEyes.excludePerformerOf": "Task_PlanChange"}
    assert candidate_groups("Task_ApproveChange") == "change_manager"
    [first] = t.sent("change.approval_requested")
    assert (first.author, first.round) == ("li.lei", 1)
    assert (first.plan.summary, list(first.plan.steps)) == (
        "Fix the totals query",
        ["Snapshot the database", "Change the pool size", "Restart"],
    )
    assert (first.plan.risk, first.plan.backup_plan, first.plan.rollback_plan) == (
        "Short outage of the report service",
        "DB snapshot",
        "Restore previous config",
    )
    assert (first.plan.major, first.plan.test_evidence) == (True, "staging: ok")

    t.complete("Task_ApproveChange", by="wang.cm", approved=False, comment="No rollback test")
    assert t.events() == ["change.decided"]
    assert t.ready() == ["Task_PlanChange"]  # rework
    t.complete("Task_PlanChange", major=False, **change)
    assert t.events() == ["change.approval_requested"]
    second = t.sent("change.approval_requested")[1]
    assert (second.round, second.plan.major, second.plan.test_evidence) == (2, False, "")
    t.complete("Task_ApproveChange", by="wang.cm", approved=True)
    assert t.events() == ["change.decided"]
    decided = [(d.approved, d.approver, d.comment, d.round) for d in t.sent("change.decided")]
    assert decided == [(False, "wang.cm", "No rollback test", 1), (True, "wang.cm", "", 2)]
    assert t.ready() == ["Task_ConfirmPlanWithRequester"]
    assert properties("Task_ConfirmPlanWithRequester") == {"sla.pause": "resolve"}
    assert properties("Event_RequesterAnswered") == {"sla.resume": "resolve"}
    t.complete("Task_ConfirmPlanWithRequester", requester_confirmed=True)
    assert t.ready() == ["Task_Implement"]


def test_requester_declining_the_plan_sends_it_back(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.assign()
    t.diagnose()
    t.plan(production_change=True)
    change = {
        "change_type": "restart",
        "steps": "restart",
        "risk": "low",
        "risk_level": "low",
        "backup_plan": "none needed",
        "rollback_plan": "none",
        "major": False,
    }
    t.complete("Task_PlanChange", **change)
    t.complete("Task_ApproveChange", by="wang.cm", approved=True)
    t.complete("Task_ConfirmPlanWithRequester", requester_confirmed=False, requester_comment="Not during close")
    assert t.ready() == ["Task_PlanChange"]


def test_key_operation_is_reviewed_by_a_second_person(clock: Clock) -> None:
    t = Ticket.start(clock, problem_type="data_anomaly")
    assert t.events() == ["ticket.classified"]
    t.assign()
    t.diagnose()
    t.plan(key_operation=True)
    assert t.ready() == ["Task_PerformKeyOperation"]
    operation = {
        "operation_type": "data_modification",
        "operation": "UPDATE invoices SET total = ...",
        "operation_result": "42 rows",
    }
    t.complete("Task_PerformKeyOperation", **operation)
    assert t.events() == ["review.requested"]
    [requested] = t.sent("review.requested")
    assert (requested.operation, requested.performer) == ("UPDATE invoices SET total = ...", "li.lei")
    review = t.task("Task_ReviewKeyOperation")
    # the four-eyes rule is the service's to enforce; the diagram names the task whose performer is excluded
    assert review.task_spec.extensions == {"fourEyes.excludePerformerOf": "Task_PerformKeyOperation"}
    assert candidate_groups("Task_ReviewKeyOperation") == "reviewer"
    t.complete("Task_ReviewKeyOperation", by="zhao.rv", approved=False, comment="WHERE clause too wide")
    assert t.events() == ["review.decided"]
    assert t.ready() == ["Task_PerformKeyOperation"]
    t.complete("Task_PerformKeyOperation", **operation)
    assert t.events() == ["review.requested"]
    t.complete("Task_ReviewKeyOperation", by="zhao.rv", approved=True)
    assert t.events() == ["review.decided"]
    decided = [(d.approved, d.reviewer, d.comment) for d in t.sent("review.decided")]
    assert decided == [(False, "zhao.rv", "WHERE clause too wide"), (True, "zhao.rv", "")]
    assert t.ready() == ["Task_VerifyInternally"]
    t.verify_internally()
    [resolved] = t.sent("ticket.resolved")
    assert resolved.resolved_by == "li.lei", "the performer of the reviewed operation"


def test_failed_user_verification_returns_to_implementation(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.to_resolved()
    assert t.events() == ["ticket.classified", "ticket.resolved"]
    assert t.ready() == []
    assert properties("Event_WaitVerification") == {"sla.pause": "resolve"}
    t.send("ticket.verified", verification_accepted=False, verification_comment="Still wrong for March")
    assert t.events() == []
    assert t.ready() == ["Task_Implement"]  # straight back to implementation, not to diagnosis
    assert properties("Event_VerificationFailed") == {"sla.resume": "resolve"}
    t.implement()
    t.verify_internally(passed=False)  # internal verification can send it back as well
    assert t.ready() == ["Task_Implement"]
    t.implement()
    t.verify_internally()
    assert t.events() == ["ticket.resolved"]
    t.send("ticket.verified", verification_accepted=True)
    assert properties("Event_TicketVerified") == {"sla.stop": "resolve"}
    assert t.events() == ["ticket.survey_requested"]


def test_dissatisfied_rating_requires_a_revisit(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.to_resolved()
    [resolved] = t.sent("ticket.resolved")
    assert (resolved.resolved_by, resolved.summary) == ("li.lei", "Fix the totals query")
    assert (resolved.cause, resolved.measures) == (
        "Refunds were not subtracted",
        "Query corrected, regression test added",
    )
    t.send("ticket.verified", verification_accepted=True)
    t.events()
    [survey] = t.sent("ticket.survey_requested")
    thursday_1000 = datetime(2025, 3, 6, 10, 0, tzinfo=SHANGHAI)  # 3 working days, as the rating timeout
    assert survey.respond_by.ToDatetime(tzinfo=UTC) == thursday_1000
    assert t.timer_due("Boundary_RatingTimeout") == thursday_1000
    t.send("ticket.rated", rating="dissatisfied", rating_comment="Took too long")
    assert t.events() == ["ticket.revisit_required"]
    [revisit_required] = t.sent("ticket.revisit_required")
    assert revisit_required.rating_comment == "Took too long"
    # the revisit clock's 12 working hours from Monday 10:00
    assert revisit_required.due_at.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 4, 15, 0, tzinfo=SHANGHAI)
    assert t.ready() == ["Task_Revisit"]
    revisit = t.task("Task_Revisit")
    assert revisit.task_spec.extensions == {"sla.start": "revisit:revisit_within"}
    assert revisit.data["revisit_within"] == "PT12H"
    t.complete("Task_Revisit", revisit_notes="Apologised, explained", revisit_outcome="concern_resolved")
    assert t.ready() == ["Task_CloseTicket"]
    t.close()
    assert t.events() == ["ticket.closed"]
    assert t.workflow.completed
    [closed] = t.sent("ticket.closed")
    assert (closed.outcome, closed.rating) == ("completed", event_codec.RATINGS["dissatisfied"])


def test_unanswered_survey_closes_after_three_working_days(clock: Clock) -> None:
    t = Ticket.start(clock)
    t.to_resolved()
    t.send("ticket.verified", verification_accepted=True)
    t.advance(days=2)
    assert t.ready() == []
    t.advance(days=2)  # Monday 10:00 + 3 working days = Thursday 10:00
    assert t.ready() == ["Task_CloseTicket"]


def test_cancel_mid_way_ends_the_instance(clock: Clock) -> None:
    t = Ticket.start(clock, problem_type="system_failure", impact_scope="company", urgency="critical")
    t.assign()
    t.complete("Task_EmergencyContact", contact_channel="phone", contact_summary="On it")
    assert t.ready() == ["Task_Diagnose"]
    assert t.workflow.waiting_events()  # progress cycle, breach and cancel messages
    t.send("ticket.cancelled", cancel_reason="Duplicate of TS20250303000007")
    assert t.workflow.completed
    assert t.ready() == []
    assert t.workflow.waiting_events() == []
    assert t.events() == ["ticket.classified"]  # no ticket.closed
    ended = {task.task_spec.bpmn_id for task in t.workflow.get_tasks(state=TaskState.COMPLETED)}
    assert "End_TicketCancelled" in ended
    assert "End_TicketClosed" not in ended
    t.advance(hours=2)
    assert t.events() == []


# -- decision tables: SOP values, hand-written -----------------------------------------------------


def decide(decision: str, **data: Any) -> tuple[dict[str, Any], str]:
    """Evaluate one DMN table through the sandbox; the result and the id of the rule that decided."""
    engine = PARSER.get_engine(decision, None)
    task = SimpleNamespace(
        data=dict(data), task_spec=SimpleNamespace(), workflow=SimpleNamespace(script_engine=SandboxedScriptEngine())
    )
    (rule, *_) = engine.decide(task)
    return engine.result(task), rule.id


# SOP §3: impact scope × urgency for anything that is not a question or a feature wish
PRIORITY_MATRIX = {
    "single_user": {"low": "P3", "medium": "P2", "high": "P1", "critical": "P1"},
    "multiple_users": {"low": "P2", "medium": "P2", "high": "P1", "critical": "P0"},
    "department": {"low": "P1", "medium": "P1", "high": "P0", "critical": "P0"},
    "company": {"low": "P1", "medium": "P1", "high": "P0", "critical": "P0"},
}
EXPEDITED = {"P0": "P0", "P1": "P0", "P2": "P1", "P3": "P2"}  # VIP / key customer, seed 004


def expected_priority(problem_type: str, impact_scope: str, urgency: str, vip: bool) -> str:
    if problem_type in ("consultation", "feature_request"):
        base = "P3"
    elif problem_type in ("system_failure", "data_anomaly") and (impact_scope, urgency) == ("multiple_users", "high"):
        base = "P0"  # production down / data loss for several users
    else:
        base = PRIORITY_MATRIX[impact_scope][urgency]
    return EXPEDITED[base] if vip else base


def _combinations() -> Iterator[tuple[str, str, str, bool]]:
    for problem_type in CATALOGUE["problem_types"]:
        for impact_scope in CATALOGUE["impact_scopes"]:
            for urgency in CATALOGUE["urgencies"]:
                for vip in (False, True):
                    yield problem_type, impact_scope, urgency, vip


def test_priority_table_covers_every_catalogue_combination() -> None:
    wrong = []
    for problem_type, impact_scope, urgency, vip in _combinations():
        result, rule = decide(
            "priority", problem_type=problem_type, impact_scope=impact_scope, urgency=urgency, vip=vip
        )
        expected = expected_priority(problem_type, impact_scope, urgency, vip)
        if result != {"priority": expected} or rule == "Rule_Priority_Default":
            wrong.append((problem_type, impact_scope, urgency, vip, result, rule, expected))
    assert wrong == []


@pytest.mark.parametrize(
    ("example", "problem_type", "impact_scope", "urgency", "vip", "priority"),
    [
        ("production down", "system_failure", "company", "critical", False, "P0"),
        ("payment failing", "software_function", "company", "high", False, "P0"),
        ("data loss", "data_anomaly", "multiple_users", "high", False, "P0"),
        ("a module unusable", "software_function", "department", "medium", False, "P1"),
        ("report export fails", "software_function", "single_user", "high", False, "P1"),
        ("one report wrong", "data_anomaly", "single_user", "medium", False, "P2"),
        ("UI wish", "feature_request", "single_user", "low", False, "P3"),
        ("how-to", "consultation", "single_user", "medium", False, "P3"),
        ("how-to from a key customer", "consultation", "single_user", "medium", True, "P2"),
        ("export fails for a key customer", "software_function", "single_user", "high", True, "P0"),
        ("unknown impact scope, urgent", "network", "galaxy", "high", False, "P1"),
        ("unknown impact scope and urgency", "network", "galaxy", "whenever", False, "P2"),
    ],
)
def test_priority_follows_the_sop_examples(
    example: str, problem_type: str, impact_scope: str, urgency: str, vip: bool, priority: str
) -> None:
    result, _ = decide("priority", problem_type=problem_type, impact_scope=impact_scope, urgency=urgency, vip=vip)
    assert result == {"priority": priority}, example


ROUTING = {  # SOP §4
    "system_failure": "operations",
    "network": "operations",
    "hardware": "operations",
    "software_crash": "development",
    "software_function": "development",
    "software_compatibility": "development",
    "data_anomaly": "development",
    "account_permission": "administrators",
    "consultation": "service_desk",
    "feature_request": "product",
}


def test_routing_names_a_team_for_every_catalogue_problem_type() -> None:
    assert set(ROUTING) == set(CATALOGUE["problem_types"])
    for problem_type, group in ROUTING.items():
        result, rule = decide("routing", problem_type=problem_type)
        assert result["candidate_group"] == group, problem_type
        assert result["team"], problem_type
        assert result["category"], problem_type
        assert rule != "Rule_Routing_Default", problem_type
    assert decide("routing", problem_type="telepathy")[0]["candidate_group"] == "service_desk"
    assert decide("routing", problem_type="feature_request")[0]["category"] == "feature_request"
    assert decide("routing", problem_type="account_permission")[0]["category"] == "service_request"


SLA = {  # SOP §5: assign, first response, resolve, calendar; emergency contact and progress cycle for P0
    "P0": ("PT15M", "PT30M", "PT4H", "24x7", "PT15M", "R/PT30M"),
    "P1": ("PT30M", "PT2H", "EOD", "cn-workdays", None, "R0/PT30M"),
    "P2": ("PT1H", "PT4H", "P3D", "cn-workdays", None, "R0/PT30M"),
    "P3": ("PT2H", "PT8H", "P5D", "cn-workdays", None, "R0/PT30M"),
}


@pytest.mark.parametrize("priority", [*SLA, "P9"])
def test_sla_targets_are_the_sop_numbers(priority: str) -> None:
    result, _ = decide("sla_targets", priority=priority)
    expected = SLA.get(priority, SLA["P2"])
    assert result == {
        "sla_priority": priority if priority in SLA else "P2",
        "assign_within": expected[0],
        "respond_within": expected[1],
        "resolve_within": expected[2],
        "calendar": expected[3],
        "contact_within": expected[4],
        "progress_cycle": expected[5],
        "diagnose_within": "P1D",  # initial diagnosis within 1 working day (seed 003)
        "tier2_respond_within": "PT1H",  # SOP §6
        "revisit_within": "PT12H",  # SOP §5, seed 003
    }


# -- conventions of bpmn/README.md ----------------------------------------------------------------


def test_every_dmn_rule_is_named_and_every_table_ends_with_a_catch_all() -> None:
    for name, doc in DMN_DOCS.items():
        (table,) = doc.xpath("//dmn:decisionTable", namespaces=NS)
        assert table.get("hitPolicy") in ("FIRST", "UNIQUE"), name
        rules = table.xpath("./dmn:rule", namespaces=NS)
        for rule in rules:
            assert rule.get("id", "").startswith("Rule_"), name
            assert rule.findtext("dmn:description", namespaces=NS), rule.get("id")
        last = [e.text for e in rules[-1].xpath("./dmn:inputEntry/dmn:text", namespaces=NS)]
        assert set(last) <= {"-", "", None}, name
        assert doc.xpath("//*[local-name()='DMNShape']"), name


def test_diagrams_follow_the_readme_conventions() -> None:
    dmn_outputs = {o.get("name") for doc in DMN_DOCS.values() for o in doc.xpath("//dmn:output", namespaces=NS)}
    for name, doc in BPMN_DOCS.items():
        elements = doc.xpath(
            "//bpmn:process//bpmn:*[@id][not(contains(local-name(), 'EventDefinition'))]"
            "[not(self::bpmn:dataObject)][not(self::bpmn:property)]",  # never drawn, in BPMN DI
            namespaces=NS,
        )
        drawn = {e.get("bpmnElement") for e in doc.xpath("//bpmndi:BPMNShape | //bpmndi:BPMNEdge", namespaces=NS)}
        assert {e.get("id") for e in elements} <= drawn, name
        for task in doc.xpath("//bpmn:userTask", namespaces=NS):
            groups = task.get(f"{{{NS['camunda']}}}candidateGroups")
            assert groups, task.get("id")
            assert {g.strip() for g in groups.split(",")} <= GROUPS, (task.get("id"), groups)
            assignee = task.get(f"{{{NS['camunda']}}}assignee")
            assert assignee in (None, "=assignee"), (task.get("id"), assignee)
            assert task.xpath(".//camunda:formField", namespaces=NS), task.get("id")
        for event in doc.xpath("//bpmn:messageEventDefinition", namespaces=NS):
            message = doc.xpath(f'//bpmn:message[@id="{event.get("messageRef")}"]', namespaces=NS)[0].get("name")
            throws = event.getparent().tag.endswith(("intermediateThrowEvent", "endEvent"))
            if throws:
                assert message in EVENTS_OUT, message
                assert event.get(f"{{{NS['camunda']}}}expression"), event.getparent().get("id")
            else:
                assert message in MESSAGES_IN or message.startswith("sla.breached."), message
        for prop in doc.xpath("//camunda:property", namespaces=NS):
            if prop.get("name") == "sla.start":
                for clock_spec in prop.get("value").split(","):
                    _clock, variable = clock_spec.split(":")
                    assert variable in dmn_outputs, variable
        for timer in doc.xpath("//bpmn:timeDate | //bpmn:timeCycle | //bpmn:timeDuration", namespaces=NS):
            assert "${" not in timer.text, timer.text
            for calendar in re.findall(r'due\("[^"]+", (\w+)\)', timer.text):
                assert calendar in dmn_outputs, calendar  # the variable sla-targets.dmn sets


# -- the service's own validation and runner ---------------------------------------------------------


def test_deploy_validation_accepts_the_bundle_without_warnings() -> None:
    compiled = compile_bundle(read_bundle_dir(BUNDLE))
    assert compiled.main_process == "support_ticket"
    assert compiled.warnings == ()


def test_service_runner_drives_the_main_path(clock: Clock) -> None:
    compiled = compile_bundle(read_bundle_dir(BUNDLE))
    engine = SpiffProcessEngine(
        compiled.process_spec,
        compiled.subprocess_specs,
        diagram_functions={"due": diagram_due(compiled.calendars, lambda: clock.now)},
        step_time_limit=1.0,
    )
    instance, advance = engine.start(ticket_data())
    open_tasks: dict[str, str] = {}
    seen: list[Any] = []

    def record(step: Any) -> None:
        seen.append(step)
        for opened in step.opened:
            open_tasks[opened.element_id] = opened.task_id
        assert step.incident is None

    def complete(element_id: str, **form: Any) -> None:
        # what the service's complete_task adds to the submitted form
        done_by = {f"{element_id}_completed_by": "li.lei", "completed_by": "li.lei"}
        record(engine.complete_task(instance, open_tasks.pop(element_id), {**form, **done_by}))

    record(advance)
    # The runner reports a task inside (sub)processes once per enclosing workflow: count it once.
    (assign,) = {o.task_id: o for o in advance.opened}.values()
    assert (assign.element_id, assign.candidate_groups) == ("Task_AssignTicket", ("${candidate_group}", "team_lead"))
    complete("Task_AssignTicket", assignee="li.lei", priority="P2")
    diagnose = next(o for o in seen[-1].opened if o.element_id == "Task_Diagnose")
    assert diagnose.assignee == "li.lei"
    complete("Task_Diagnose", first_response="On it", diagnosis="Query bug", escalate=False)
    complete("Task_PlanSolution", solution_plan="Fix query", production_change=False, key_operation=False)
    complete("Task_Implement", implementation_notes="Deployed")
    complete(
        "Task_VerifyInternally", internal_verification_passed=True, verification_evidence="ok", cause="c", measures="m"
    )
    record(engine.deliver_message(instance, "ticket.verified", {"verification_accepted": True}))
    record(engine.deliver_message(instance, "ticket.rated", {"rating": "satisfied"}))
    complete("Task_CloseTicket", closing_summary="Done")
    assert seen[-1].finished
    thrown = [event.name for step in seen for event in step.thrown]
    assert thrown == ["ticket.classified", "ticket.resolved", "ticket.survey_requested", "ticket.closed"]
    clock_steps = {
        (entered.element_id, name, value)
        for step in seen
        for entered in step.entered
        for name, value in entered.properties.items()
        if name.startswith("sla.")
    }
    assert clock_steps == {
        ("Task_AssignTicket", "sla.start", "assign:assign_within"),
        ("Event_TicketAssigned", "sla.stop", "assign"),
        ("Task_Diagnose", "sla.start", "respond:respond_within,diagnose:diagnose_within,resolve:resolve_within"),
        ("Event_FirstResponse", "sla.stop", "respond,diagnose"),
        ("Event_WaitVerification", "sla.pause", "resolve"),
        ("Event_TicketVerified", "sla.stop", "resolve"),
    }
