"""The SpiffWorkflow adapter reports what each operation did: tasks opened and withdrawn, steps
entered with their properties, messages thrown, the next timer, incidents — and an instance saved
without its spec comes back and carries on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from SpiffWorkflow.camunda.parser import CamundaParser

from services.workflow.adapters.engine import clock
from services.workflow.adapters.engine.runner import SpiffProcessEngine
from services.workflow.application.engine import NotWaitingFor

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'targetNamespace="http://bpmn.io/schema/bpmn"'
)

# start → Task_Diagnose (user, 30 min timer boundary → Throw_Breach) → Gateway → Throw_Resolved → wait for
# `ticket.verified` → end. Script computes a variable; properties carry SLA markers.
PROCESS = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="d1">
  <bpmn:message id="Msg_Resolved" name="ticket.resolved"/>
  <bpmn:message id="Msg_Verified" name="ticket.verified"/>
  <bpmn:message id="Msg_Breached" name="sla.breached"/>
  <bpmn:process id="ticket" isExecutable="true">
    <bpmn:startEvent id="StartEvent"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="Script_Score" name="Score"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = len(title) * (2 if vip else 1)</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="Task_Diagnose" name="Diagnose">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="cause" label="Cause" type="string"><camunda:validation>
            <camunda:constraint name="required"/></camunda:validation></camunda:formField>
        </camunda:formData>
        <camunda:properties><camunda:property name="sla.start" value="resolve:resolve_within"/>
          <camunda:property name="candidateGroups" value="tier1"/></camunda:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="Timer_Diagnose" attachedToRef="Task_Diagnose" cancelActivity="true">
      <bpmn:outgoing>f9</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT30M"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:intermediateThrowEvent id="Throw_Breach"><bpmn:incoming>f9</bpmn:incoming><bpmn:outgoing>f10</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="Msg_Breached"/></bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="End_Breached"><bpmn:incoming>f10</bpmn:incoming></bpmn:endEvent>
    <bpmn:intermediateThrowEvent id="Throw_Resolved"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="Msg_Resolved"/></bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="Catch_Verified"><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:extensionElements><camunda:properties><camunda:property name="sla.pause" value="resolve"/>
      </camunda:properties></bpmn:extensionElements>
      <bpmn:messageEventDefinition messageRef="Msg_Verified"/></bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="Script_Outcome"><bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:script>outcome = "closed" if verification_accepted else "reopened"</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="EndEvent"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="StartEvent" targetRef="Script_Score"/>
    <bpmn:sequenceFlow id="f2" sourceRef="Script_Score" targetRef="Task_Diagnose"/>
    <bpmn:sequenceFlow id="f3" sourceRef="Task_Diagnose" targetRef="Throw_Resolved"/>
    <bpmn:sequenceFlow id="f4" sourceRef="Throw_Resolved" targetRef="Catch_Verified"/>
    <bpmn:sequenceFlow id="f5" sourceRef="Catch_Verified" targetRef="Script_Outcome"/>
    <bpmn:sequenceFlow id="f6" sourceRef="Script_Outcome" targetRef="EndEvent"/>
    <bpmn:sequenceFlow id="f9" sourceRef="Timer_Diagnose" targetRef="Throw_Breach"/>
    <bpmn:sequenceFlow id="f10" sourceRef="Throw_Breach" targetRef="End_Breached"/>
  </bpmn:process>
</bpmn:definitions>
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    clock.use_clock(fake)
    yield fake
    clock.use_clock(lambda: datetime.now(UTC))


def engine(source: str = PROCESS, **functions: Any) -> SpiffProcessEngine:
    parser = CamundaParser()
    parser.add_bpmn_str(source.encode())
    return SpiffProcessEngine(
        parser.get_spec("ticket"),
        parser.get_subprocess_specs("ticket"),
        diagram_functions=functions,
        step_time_limit=0.5,
    )


def test_start_runs_to_the_first_user_task_and_reports_it(fake_clock: FakeClock) -> None:
    _, advance = engine().start({"title": "VPN down", "vip": True})
    [task] = advance.opened
    assert task.element_id == "Task_Diagnose"
    assert task.name == "Diagnose"
    assert task.candidate_groups == ("tier1",)
    assert [(f.id, f.required) for f in task.form] == [("cause", True)]
    assert [s.element_id for s in advance.entered] == ["StartEvent", "Script_Score", "Task_Diagnose", "Timer_Diagnose"]
    assert advance.entered[2].properties["sla.start"] == "resolve:resolve_within"
    assert advance.variables["score"] == 16  # len("VPN down") × 2 for a VIP
    # Due in 30 minutes; the engine fires it once that instant has passed.
    assert advance.next_timer_at == fake_clock.now + timedelta(minutes=30, microseconds=1)
    assert not advance.finished
    assert advance.incident is None


def test_completing_a_task_throws_and_waits_for_the_message(fake_clock: FakeClock) -> None:
    runner = engine()
    instance, started = runner.start({"title": "VPN down", "vip": False})
    advance = runner.complete_task(instance, started.opened[0].task_id, {"cause": "expired certificate"})
    assert [(e.name, e.element_id) for e in advance.thrown] == [("ticket.resolved", "Throw_Resolved")]
    assert advance.thrown[0].variables["cause"] == "expired certificate"
    assert "Catch_Verified" in [s.element_id for s in advance.entered]
    assert [s.element_id for s in advance.active] == ["Catch_Verified"]
    assert advance.next_timer_at is None, "the boundary timer went with its task"
    with pytest.raises(NotWaitingFor):
        runner.complete_task(instance, started.opened[0].task_id, {"cause": "again"})

    done = runner.deliver_message(instance, "ticket.verified", {"verification_accepted": True})
    assert done.finished
    assert done.variables["outcome"] == "closed"


def test_saved_without_spec_and_restored_it_carries_on(fake_clock: FakeClock) -> None:
    runner = engine()
    instance, started = runner.start({"title": "Printer jam", "vip": False})
    saved = instance.dump()
    assert b'"spec"' not in saved
    restored = runner.load(saved)
    advance = runner.complete_task(restored, started.opened[0].task_id, {"cause": "paper"})
    assert [e.name for e in advance.thrown] == ["ticket.resolved"]
    again = runner.load(restored.dump())
    assert (
        runner.deliver_message(again, "ticket.verified", {"verification_accepted": False}).variables["outcome"]
        == "reopened"
    )


def test_a_timer_fires_only_once_due_and_withdraws_the_task(fake_clock: FakeClock) -> None:
    runner = engine()
    instance, started = runner.start({"title": "Disk full", "vip": False})
    fake_clock.now += timedelta(minutes=29, seconds=59)
    early = runner.wake(instance)
    assert early.thrown == ()
    assert early.withdrawn == ()
    fake_clock.now += timedelta(seconds=2)
    fired = runner.wake(runner.load(instance.dump()))
    assert [e.name for e in fired.thrown] == ["sla.breached"]
    assert fired.withdrawn == (started.opened[0].task_id,)
    assert fired.finished


def test_a_message_nobody_waits_for_is_refused(fake_clock: FakeClock) -> None:
    runner = engine()
    instance, _ = runner.start({"title": "x", "vip": False})
    with pytest.raises(NotWaitingFor, match=r"ticket\.verified"):
        runner.deliver_message(instance, "ticket.verified", {})


def test_failing_diagram_code_is_an_incident_not_a_crash(fake_clock: FakeClock) -> None:
    runner = engine()
    _, advance = runner.start({"vip": False})  # no title: the script fails
    assert advance.incident is not None
    assert advance.incident.element_id == "Script_Score"
    assert "title" in advance.incident.message
    assert advance.opened == ()
