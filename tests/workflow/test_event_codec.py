"""The workflow service's events, as the contract (events.proto) defines them: every workflow event
type is encoded in the envelope with producer "workflow", its payload filled from the process
variables named in bpmn/README.md; unknown thrown names are refused; bad values never raise."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2

from services.kit.events import EVENT_TYPES, subject_for
from services.workflow.adapters import event_codec as codec
from services.workflow.adapters.engine import conventions
from services.workflow.adapters.event_codec import MatchedRule, UnknownEventType, encode_thrown
from services.workflow.application.engine import OpenedTask, ThrownEvent
from services.workflow.domain.tasks import TaskState, WorkTask

ORG = "acme"
TICKET = "ACME-2024-000042"
AT = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
CST = timezone(timedelta(hours=8))
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

#: Workflow payloads are numbered from 40 in events.proto ("From workflow.").
WORKFLOW_TYPES = {
    event_type
    for event_type, name in EVENT_TYPES.items()
    if events_pb2.Event.DESCRIPTOR.fields_by_name[name].number >= 40
}


def ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def struct(values: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(values)
    return s


ENVELOPE: dict[str, Any] = {"org": ORG, "ticket_number": TICKET, "occurred_at": AT}

# (thrown message name, variables, the payload it must give)
THROWN: list[tuple[str, dict[str, Any], Message]] = [
    (
        "ticket.classified",
        {
            "priority": "P1",
            "category": "software",
            "team": "erp",
            "candidate_groups": ["tier1", "team_lead"],
            "sla_targets": {"assign": "PT15M", "resolve": "PT4H"},
            "calendar": "cn-workdays",
            "deployment_version": 7,
            "title": "ERP client crashes",  # unrelated variables are ignored
        },
        events_pb2.TicketClassified(
            priority=types_pb2.PRIORITY_P1,
            category="software",
            team="erp",
            candidate_groups=["tier1", "team_lead"],
            matched_rules=[
                events_pb2.MatchedRule(
                    decision_id="priority", rule_id="R-7", description="VIP core", outputs=struct({"priority": "P1"})
                )
            ],
            sla_targets={"assign": "PT15M", "resolve": "PT4H"},
            calendar="cn-workdays",
            deployment_version=7,
        ),
    ),
    (
        "ticket.info_requested",
        {"missing_info": ["screenshot", "os"], "remind_at": "2024-05-06T18:30:00+08:00", "reminder": True},
        events_pb2.TicketInfoRequested(
            missing_info=["screenshot", "os"], remind_at=ts(datetime(2024, 5, 6, 10, 30, tzinfo=UTC)), reminder=True
        ),
    ),
    (
        "ticket.escalated",
        {
            "from_tier": "tier1",
            "to_tier": "tier2",
            "automatic": True,
            "reason": "beyond tier-1 skills",
            "respond_by": "2024-05-06T10:30:00Z",
            "problem_description": "ERP client crashes on login",
            "impact": "finance department",
            "solutions_tried": "reinstalled client\ncleared cache\n",
            "suggested_team": "erp",
        },
        events_pb2.TicketEscalated(
            from_tier="tier1",
            to_tier="tier2",
            automatic=True,
            reason="beyond tier-1 skills",
            respond_by=ts(datetime(2024, 5, 6, 10, 30, tzinfo=UTC)),
            form=events_pb2.EscalationForm(
                problem_description="ERP client crashes on login",
                impact="finance department",
                solutions_tried=["reinstalled client", "cleared cache"],
                reason="beyond tier-1 skills",
                suggested_team="erp",
            ),
        ),
    ),
    (
        "ticket.progress_due",
        {"sequence": 2, "due_at": "2024-05-06T10:30:00+00:00"},
        events_pb2.TicketProgressDue(sequence=2, due_at=ts(datetime(2024, 5, 6, 10, 30, tzinfo=UTC))),
    ),
    (
        "change.approval_requested",
        {
            "task_id": "t-9",
            "author": "wang.wu",
            "round": 2,
            "summary": "raise pool size",
            "steps": ["stop service", "edit config", "start service"],
            "risk": "brief outage",
            "backup_plan": "snapshot",
            "rollback_plan": "restore snapshot",
            "major": True,
            "test_evidence": "passed in test env",
        },
        events_pb2.ChangeApprovalRequested(
            task_id="t-9",
            author="wang.wu",
            round=2,
            plan=events_pb2.ChangePlan(
                summary="raise pool size",
                steps=["stop service", "edit config", "start service"],
                risk="brief outage",
                backup_plan="snapshot",
                rollback_plan="restore snapshot",
                major=True,
                test_evidence="passed in test env",
            ),
        ),
    ),
    (
        "change.decided",
        {"approved": True, "approver": "zhao.liu", "comment": "go", "round": 2},
        events_pb2.ChangeDecided(approved=True, approver="zhao.liu", comment="go", round=2),
    ),
    (
        "review.requested",
        {"task_id": "t-11", "operation": "data modification", "performer": "wang.wu"},
        events_pb2.ReviewRequested(task_id="t-11", operation="data modification", performer="wang.wu"),
    ),
    (
        "review.decided",
        {"approved": False, "reviewer": "zhao.liu", "comment": "missing backup"},
        events_pb2.ReviewDecided(approved=False, reviewer="zhao.liu", comment="missing backup"),
    ),
    (
        "ticket.resolved",
        {"resolved_by": "wang.wu", "cause": "stale cache", "measures": "cleared cache", "summary": "works again"},
        events_pb2.TicketResolved(
            resolved_by="wang.wu", cause="stale cache", measures="cleared cache", summary="works again"
        ),
    ),
    (
        "ticket.survey_requested",
        {"respond_by": datetime(2024, 5, 9, 18, 0, tzinfo=CST)},
        events_pb2.TicketSurveyRequested(respond_by=ts(datetime(2024, 5, 9, 10, 0, tzinfo=UTC))),
    ),
    (
        "ticket.revisit_required",
        {"task_id": "t-20", "due_at": "2024-05-07T09:30:00+08:00", "rating_comment": "too slow"},
        events_pb2.TicketRevisitRequired(
            task_id="t-20", due_at=ts(datetime(2024, 5, 7, 1, 30, tzinfo=UTC)), rating_comment="too slow"
        ),
    ),
    (
        "ticket.closed",
        {"outcome": "completed", "rating": "dissatisfied"},
        events_pb2.TicketClosed(outcome="completed", rating=types_pb2.RATING_DISSATISFIED),
    ),
]

RULES = [MatchedRule("priority", "R-7", "VIP core", {"priority": "P1"})]

TASK = OpenedTask(
    task_id="t-1",
    element_id="Task_Diagnose",
    name="Diagnose",
    candidate_groups=("tier1", "team_lead"),
    assignee="li.lei",
    form=(),
    exclude_performers_of=(),
)

# (event type, how the service encodes it, the payload it must give)
GENERATED: list[tuple[str, Callable[[], events_pb2.Event], Message]] = [
    (
        "task.created",
        lambda: codec.task_created(TASK, **ENVELOPE, due_at=datetime(2024, 5, 6, 13, 30, tzinfo=UTC), priority="P0"),
        events_pb2.TaskCreated(
            task_id="t-1",
            element_id="Task_Diagnose",
            name="Diagnose",
            candidate_groups=["tier1", "team_lead"],
            assignee="li.lei",
            due_at=ts(datetime(2024, 5, 6, 13, 30, tzinfo=UTC)),
            priority=types_pb2.PRIORITY_P0,
        ),
    ),
    (
        "task.claimed",
        lambda: codec.task_claimed("t-1", "Task_Diagnose", "Diagnose", "li.lei", **ENVELOPE, actor=("li.lei", "agent")),
        events_pb2.TaskClaimed(task_id="t-1", element_id="Task_Diagnose", assignee="li.lei"),
    ),
    (
        "task.completed",
        lambda: codec.task_completed(
            "t-1",
            "Task_Diagnose",
            "Diagnose",
            "li.lei",
            {"cause": "stale cache", "fixed_at": datetime(2024, 5, 6, 10, 0, tzinfo=UTC), "hours": 2, "ok": True},
            **ENVELOPE,
            actor=("li.lei", "agent"),
        ),
        events_pb2.TaskCompleted(
            task_id="t-1",
            element_id="Task_Diagnose",
            name="Diagnose",
            completed_by="li.lei",
            variables=struct({"cause": "stale cache", "fixed_at": "2024-05-06T10:00:00+00:00", "hours": 2, "ok": True}),
        ),
    ),
    (
        "ticket.assigned",
        lambda: codec.ticket_assigned("erp", "li.lei", **ENVELOPE, co_handlers=["han.mei"]),
        events_pb2.TicketAssigned(team="erp", assignee="li.lei", co_handlers=["han.mei"]),
    ),
    (
        "sla.warning",
        lambda: codec.sla_warning(
            "resolve", datetime(2024, 5, 6, 13, 30, tzinfo=UTC), timedelta(minutes=48, seconds=0.9), **ENVELOPE
        ),
        events_pb2.SlaWarning(
            clock="resolve", due_at=ts(datetime(2024, 5, 6, 13, 30, tzinfo=UTC)), remaining_seconds=2880
        ),
    ),
    (
        "sla.breached",
        lambda: codec.sla_breached("assign", datetime(2024, 5, 6, 9, 15, tzinfo=UTC), **ENVELOPE),
        events_pb2.SlaBreached(clock="assign", due_at=ts(datetime(2024, 5, 6, 9, 15, tzinfo=UTC)), breached_at=ts(AT)),
    ),
]

CASES: list[tuple[str, Callable[[], events_pb2.Event], Message]] = [
    (
        name,
        lambda name=name, variables=variables: encode_thrown(
            ThrownEvent(name, "Throw_X", variables), **ENVELOPE, matched_rules=RULES
        ),
        expected,
    )
    for name, variables, expected in THROWN
] + GENERATED


def test_the_cases_cover_every_workflow_event_type() -> None:
    assert {t for t, _, _ in CASES} == WORKFLOW_TYPES
    assert len(CASES) == len(WORKFLOW_TYPES)
    assert codec.THROWABLE_EVENT_TYPES <= WORKFLOW_TYPES
    assert codec.THROWABLE_EVENT_TYPES == conventions.EVENT_TYPES  # what the bundle validator allows


@pytest.mark.parametrize(("event_type", "encode", "expected"), CASES, ids=[c[0] for c in CASES])
def test_encodes_the_envelope_and_payload(
    event_type: str, encode: Callable[[], events_pb2.Event], expected: Message
) -> None:
    event = events_pb2.Event.FromString(encode().SerializeToString())

    assert event.type == event_type
    assert event.WhichOneof("payload") == EVENT_TYPES[event_type]
    assert subject_for(event.organization, event.type) == f"supportflow.{ORG}.{event_type}"
    assert event.organization == ORG
    assert event.ticket_number == TICKET
    assert event.producer == "workflow"
    assert uuid.UUID(event.event_id).version == 4
    assert TRACEPARENT.match(event.trace.traceparent)
    assert event.occurred_at.ToDatetime(tzinfo=UTC) == AT
    assert event.actor.subject
    assert event.actor.role
    assert MessageToDict(getattr(event, EVENT_TYPES[event_type])) == MessageToDict(expected)
    assert getattr(event, EVENT_TYPES[event_type]) == expected


def test_thrown_events_act_as_the_system_unless_told() -> None:
    event = encode_thrown(ThrownEvent("ticket.closed", "End", {}), **ENVELOPE)
    assert (event.actor.subject, event.actor.role) == ("system", "system"), "common.v1.Actor: automatic steps"
    event = encode_thrown(ThrownEvent("change.decided", "Throw", {}), **ENVELOPE, actor=("zhao.liu", "approver"))
    assert (event.actor.subject, event.actor.role) == ("zhao.liu", "approver")


def test_trace_and_event_id_can_be_carried_on() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = encode_thrown(
        ThrownEvent("ticket.resolved", "Throw", {}), **ENVELOPE, traceparent=parent, event_id="e-fixed"
    )
    assert (event.trace.traceparent, event.event_id) == (parent, "e-fixed")
    assert codec.sla_warning("a", AT, timedelta(0), **ENVELOPE, traceparent=parent).trace.traceparent == parent


def test_each_encoding_gets_a_fresh_event_id() -> None:
    thrown = ThrownEvent("ticket.closed", "End", {})
    assert encode_thrown(thrown, **ENVELOPE).event_id != encode_thrown(thrown, **ENVELOPE).event_id


@pytest.mark.parametrize(
    "name",
    ["ticket.bogus", "", "ticket.submitted", "ticket.cancelled", "task.created", "sla.breached", "ticket.assigned"],
)
def test_unknown_thrown_names_are_refused(name: str) -> None:
    with pytest.raises(UnknownEventType) as raised:
        encode_thrown(ThrownEvent(name, "Throw_X", {"priority": "P0"}), **ENVELOPE)
    assert raised.value.name == name
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("name", sorted(codec.THROWABLE_EVENT_TYPES))
def test_missing_variables_give_an_empty_payload(name: str) -> None:
    event = events_pb2.Event.FromString(encode_thrown(ThrownEvent(name, "Throw_X", {}), **ENVELOPE).SerializeToString())
    assert event.type == name
    assert event.WhichOneof("payload") == EVENT_TYPES[name]
    assert getattr(event, EVENT_TYPES[name]).ByteSize() == 0


#: Every variable the codec reads, with values of the wrong type or out of range.
BAD = {
    "priority": "P9",
    "category": 3,
    "team": ["erp"],
    "candidate_groups": [1, 2],
    "sla_targets": {"assign": 15},
    "assign_within": "PT15M",  # not used: `sla_targets` is set (and wrong)
    "calendar": None,
    "deployment_version": 2**40,
    "missing_info": {"a": 1},
    "remind_at": "tomorrow",
    "reminder": "yes",
    "from_tier": 1,
    "to_tier": object(),
    "automatic": 1,
    "reason": b"bytes",
    "respond_by": "2024-05-06T10:30:00",  # no offset
    "problem_description": 1.5,
    "impact": True,
    "solutions_tried": 42,
    "suggested_team": {},
    "sequence": "2",
    "due_at": 1715000000,
    "task_id": 9,
    "author": None,
    "round": True,
    "summary": [],
    "steps": [None],
    "risk": 0,
    "backup_plan": 0,
    "rollback_plan": 0,
    "major": "true",
    "test_evidence": 0,
    "approved": "yes",
    "approver": 5,
    "decided_by": "not used: approver is set (and wrong)",
    "comment": 0,
    "operation": 0,
    "performer": 0,
    "reviewer": 0,
    "resolved_by": 0,
    "cause": 0,
    "measures": 0,
    "rating_comment": 0,
    "outcome": 0,
    "rating": "furious",
}


@pytest.mark.parametrize("name", sorted(codec.THROWABLE_EVENT_TYPES))
def test_wrong_values_leave_their_fields_unset(name: str) -> None:
    event = encode_thrown(ThrownEvent(name, "Throw_X", BAD), **ENVELOPE)
    assert events_pb2.Event.FromString(event.SerializeToString()) == event
    assert getattr(event, EVENT_TYPES[name]).ByteSize() == 0


def payload_of(name: str, variables: dict[str, Any]) -> Any:
    event = encode_thrown(ThrownEvent(name, "Throw_X", variables), **ENVELOPE)
    return getattr(event, EVENT_TYPES[name])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("P0", types_pb2.PRIORITY_P0),
        (" p3 ", types_pb2.PRIORITY_P3),
        ("P9", types_pb2.PRIORITY_UNSPECIFIED),
        ("", types_pb2.PRIORITY_UNSPECIFIED),
        (0, types_pb2.PRIORITY_UNSPECIFIED),
        (None, types_pb2.PRIORITY_UNSPECIFIED),
    ],
)
def test_priorities(value: Any, expected: int) -> None:
    assert payload_of("ticket.classified", {"priority": value}).priority == expected


def test_a_wrong_priority_changes_nothing_else() -> None:
    p = payload_of("ticket.classified", {"priority": "P9", "team": "erp"})
    assert (p.priority, p.team) == (types_pb2.PRIORITY_UNSPECIFIED, "erp")
    assert p.ByteSize() == events_pb2.TicketClassified(team="erp").ByteSize()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"candidate_groups": "tier1, team_lead,"}, ["tier1", "team_lead"]),
        ({"candidate_group": "tier2"}, ["tier2"]),
        ({"candidate_group": ["tier2", "expert"]}, ["tier2", "expert"]),
        ({"candidate_groups": ["tier1"], "candidate_group": "tier2"}, ["tier1"]),
        ({"candidate_groups": None, "candidate_group": "tier2"}, ["tier2"]),
        ({"candidate_groups": ("tier1", 2)}, []),
    ],
)
def test_candidate_groups(variables: dict[str, Any], expected: list[str]) -> None:
    assert list(payload_of("ticket.classified", variables).candidate_groups) == expected


def test_sla_targets_from_within_variables() -> None:
    p = payload_of(
        "ticket.classified", {"assign_within": "PT15M", "resolve_within": "PT4H", "respond_within": 60, "_within": "x"}
    )
    assert dict(p.sla_targets) == {"assign": "PT15M", "resolve": "PT4H"}


def test_change_decided_takes_decided_by_when_no_approver() -> None:
    assert payload_of("change.decided", {"decided_by": "zhao.liu"}).approver == "zhao.liu"


def test_message_sub_fields_only_when_something_fills_them() -> None:
    assert not payload_of("ticket.escalated", {"to_tier": "tier2"}).HasField("form")
    assert payload_of("ticket.escalated", {"impact": "all"}).HasField("form")
    assert not payload_of("change.approval_requested", {"author": "a"}).HasField("plan")
    assert payload_of("change.approval_requested", {"major": True}).HasField("plan")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T18:30:00+08:00", datetime(2024, 5, 6, 10, 30, tzinfo=UTC)),
        ("2024-05-06 10:30:00+00:00", datetime(2024, 5, 6, 10, 30, tzinfo=UTC)),  # str(datetime)
        ("2024-05-06T10:30:00Z", datetime(2024, 5, 6, 10, 30, tzinfo=UTC)),
        (datetime(2024, 5, 6, 10, 30, tzinfo=UTC), datetime(2024, 5, 6, 10, 30, tzinfo=UTC)),
        ("2024-05-06T10:30:00", None),
        (datetime(2024, 5, 6, 10, 30), None),
        ("PT30M", None),
        ("", None),
        (1715000000, None),
    ],
)
def test_times(value: Any, expected: datetime | None) -> None:
    p = payload_of("ticket.progress_due", {"due_at": value})
    if expected is None:
        assert not p.HasField("due_at")
    else:
        assert p.due_at.ToDatetime(tzinfo=UTC) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), (3.0, 3), (3.5, 0), (-1, -1), (2**31, 0), (math.inf, 0), (math.nan, 0)]
)
def test_int32_fields(value: Any, expected: int) -> None:
    assert payload_of("ticket.progress_due", {"sequence": value}).sequence == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("satisfied", types_pb2.RATING_SATISFIED), ("Neutral", types_pb2.RATING_NEUTRAL), (3, 0), ("meh", 0)],
)
def test_ratings(value: Any, expected: int) -> None:
    assert payload_of("ticket.closed", {"rating": value}).rating == expected


def test_matched_rules_only_in_classified_and_their_outputs_are_made_safe() -> None:
    outputs: dict[Any, Any] = {"team": "erp", "at": date(2024, 5, 6), "blob": b"x", 1: "one"}
    rule = MatchedRule("routing", "R-2", outputs=outputs)
    classified = encode_thrown(
        ThrownEvent("ticket.classified", "Throw", {}), **ENVELOPE, matched_rules=[rule]
    ).ticket_classified
    assert MessageToDict(classified.matched_rules[0]) == {
        "decisionId": "routing",
        "ruleId": "R-2",
        "outputs": {"team": "erp", "at": "2024-05-06"},
    }
    resolved = encode_thrown(ThrownEvent("ticket.resolved", "Throw", {}), **ENVELOPE, matched_rules=[rule])
    assert resolved.ticket_resolved.ByteSize() == 0


def test_struct_keeps_json_values_and_drops_the_rest() -> None:
    class Opaque:
        pass

    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["next"] = {}
        node = node["next"]
    looped: list[Any] = []
    looped.append(looped)

    s = codec.to_struct(
        {
            "text": "x",
            "flag": False,
            "none": None,
            "int": 42,
            "float": 1.5,
            "when": datetime(2024, 5, 6, 18, 0, tzinfo=CST),
            "day": date(2024, 5, 6),
            "list": [1, "a", b"bytes", {"k": Opaque()}, (2, 3)],
            "nested": {"a": {"b": [True]}, 3: "int key"},
            "huge": 2**60,
            "nan": math.nan,
            "inf": -math.inf,
            "bytes": b"x",
            "set": {1, 2},
            "object": Opaque(),
            "delta": timedelta(hours=1),
            "deep": deep,
            "loop": looped,
        }
    )
    plain = MessageToDict(s)
    assert {k: plain[k] for k in ("text", "flag", "none", "int", "float", "when", "day", "list", "nested")} == {
        "text": "x",
        "flag": False,
        "none": None,
        "int": 42.0,
        "float": 1.5,
        "when": "2024-05-06T18:00:00+08:00",
        "day": "2024-05-06",
        "list": [1.0, "a", {}, [2.0, 3.0]],
        "nested": {"a": {"b": [True]}},
    }
    assert not {"huge", "nan", "inf", "bytes", "set", "object", "delta"} & plain.keys()
    assert Struct.FromString(s.SerializeToString()) == s  # deep and looped values were cut, not fatal


def test_task_completed_with_unserialisable_variables_does_not_raise() -> None:
    event = codec.task_completed(
        "t-1", "Task", "Task", "li.lei", {"ok": 1, "bad": object(), "nan": math.nan}, **ENVELOPE
    )
    assert MessageToDict(events_pb2.Event.FromString(event.SerializeToString()).task_completed.variables) == {"ok": 1.0}


def test_task_created_without_due_time_or_priority() -> None:
    p = codec.task_created(TASK, **ENVELOPE, due_at=None, priority=None).task_created
    assert not p.HasField("due_at")
    assert p.priority == types_pb2.PRIORITY_UNSPECIFIED
    assert codec.task_created(TASK, **ENVELOPE, due_at=None, priority="P7").task_created.priority == 0


def test_sla_breached_at_can_be_given() -> None:
    at = datetime(2024, 5, 6, 9, 16, tzinfo=UTC)
    p = codec.sla_breached("assign", AT, **ENVELOPE, breached_at=at).sla_breached
    assert p.breached_at.ToDatetime(tzinfo=UTC) == at


def test_matched_rules_as_mappings_or_from_the_variable() -> None:
    as_mapping = {"decision_id": "priority", "rule_id": "R-7", "description": "VIP core", "outputs": {"priority": "P1"}}
    expected = [
        events_pb2.MatchedRule(
            decision_id="priority", rule_id="R-7", description="VIP core", outputs=struct({"priority": "P1"})
        )
    ]
    passed = encode_thrown(
        ThrownEvent("ticket.classified", "Throw", {}),
        **ENVELOPE,
        matched_rules=[as_mapping, "junk"],  # type: ignore[list-item]
    )
    assert list(passed.ticket_classified.matched_rules) == expected
    from_variable = payload_of("ticket.classified", {"matched_rules": [as_mapping, 3]})
    assert list(from_variable.matched_rules) == expected
    passed_wins = encode_thrown(
        ThrownEvent("ticket.classified", "Throw", {"matched_rules": [as_mapping]}),
        **ENVELOPE,
        matched_rules=[MatchedRule("routing", "R-2")],
    )
    assert [r.rule_id for r in passed_wins.ticket_classified.matched_rules] == ["R-2"]
    odd = payload_of("ticket.classified", {"matched_rules": [{"rule_id": 5, "outputs": "x"}]})
    assert list(odd.matched_rules) == [events_pb2.MatchedRule()]
    assert not payload_of("ticket.classified", {"matched_rules": "R-7"}).matched_rules


def test_task_created_from_the_service_work_task() -> None:
    task = WorkTask(
        task_id="t-5",
        ticket_number=TICKET,
        organization=ORG,
        element_id="Task_Approve",
        name="Approve change",
        state=TaskState.OPEN,
        candidate_groups=("change_board",),
        form=(),
        created_at=AT,
        priority="P2",
    )
    p = codec.task_created(task, **ENVELOPE, due_at=task.due_at, priority=task.priority).task_created
    assert p == events_pb2.TaskCreated(
        task_id="t-5",
        element_id="Task_Approve",
        name="Approve change",
        candidate_groups=["change_board"],
        priority=types_pb2.PRIORITY_P2,
    )
