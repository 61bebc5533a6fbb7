"""Deploy validation of a bundle: a valid Camunda 7 bundle compiles into specs that carry what the
service needs; every broken or malicious bundle is rejected before anything runs, with a problem
naming the file, the element and what to do."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from services.workflow.adapters.engine.bundle import (
    BundleProblem,
    BundleRejected,
    CompiledBundle,
    compile_bundle,
    read_bundle_dir,
)
from services.workflow.adapters.engine.files import MAX_FILE_SIZE
from services.workflow.adapters.sandbox import SandboxedScriptEngine

DEFINITIONS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="definitions" targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler">\n'
)

SUPPORT = (
    DEFINITIONS
    + """  <bpmn:message id="msg_classified" name="ticket.classified"/>
  <bpmn:process id="ticket" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="classify"/>
    <bpmn:businessRuleTask id="classify" camunda:decisionRef="priority"/>
    <bpmn:sequenceFlow id="f2" sourceRef="classify" targetRef="announce"/>
    <bpmn:intermediateThrowEvent id="announce">
      <bpmn:messageEventDefinition id="announce_def" messageRef="msg_classified"/>
    </bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="announce" targetRef="handle"/>
    <bpmn:userTask id="handle" camunda:candidateGroups="tier1,team_lead">
      <bpmn:extensionElements>
        <camunda:properties>
          <camunda:property name="sla.start" value="resolve:resolve_within"/>
        </camunda:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="remind" attachedToRef="handle" cancelActivity="false">
      <bpmn:timerEventDefinition id="remind_def">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT30M"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_remind" sourceRef="remind" targetRef="reminded"/>
    <bpmn:endEvent id="reminded"/>
    <bpmn:boundaryEvent id="overdue" attachedToRef="handle">
      <bpmn:timerEventDefinition id="overdue_def">
        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">due("PT8H", "cn-workdays")</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_overdue" sourceRef="overdue" targetRef="done"/>
    <bpmn:sequenceFlow id="f4" sourceRef="handle" targetRef="gateway"/>
    <bpmn:exclusiveGateway id="gateway" default="f_skip"/>
    <bpmn:sequenceFlow id="f_review" sourceRef="gateway" targetRef="review">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">priority in ("P0", "P1")</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_skip" sourceRef="gateway" targetRef="done"/>
    <bpmn:callActivity id="review" calledElement="dual_review">
      <bpmn:extensionElements>
        <camunda:in variables="all"/>
        <camunda:out variables="all"/>
      </bpmn:extensionElements>
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="f5" sourceRef="review" targetRef="done"/>
    <bpmn:endEvent id="done">
      <bpmn:extensionElements>
        <camunda:properties>
          <camunda:property name="sla.stop" value="resolve"/>
        </camunda:properties>
      </bpmn:extensionElements>
    </bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
)

REVIEW = (
    DEFINITIONS
    + """  <bpmn:process id="dual_review" isExecutable="true">
    <bpmn:startEvent id="review_start"/>
    <bpmn:sequenceFlow id="r1" sourceRef="review_start" targetRef="perform"/>
    <bpmn:userTask id="perform" camunda:candidateGroups="tier2"/>
    <bpmn:sequenceFlow id="r2" sourceRef="perform" targetRef="check"/>
    <bpmn:userTask id="check" camunda:candidateGroups="tier2">
      <bpmn:extensionElements>
        <camunda:properties>
          <camunda:property name="fourEyes.excludePerformerOf" value="perform"/>
        </camunda:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="r3" sourceRef="check" targetRef="record"/>
    <bpmn:scriptTask id="record" scriptFormat="python">
      <bpmn:script>reviewed = True</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="r4" sourceRef="record" targetRef="review_end"/>
    <bpmn:endEvent id="review_end"/>
  </bpmn:process>
</bpmn:definitions>
"""
)

PRIORITY_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="priority_definitions" name="Priority"
    namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="priority" name="Priority">
    <decisionTable id="priority_table">
      <input id="urgency_input" label="Urgency">
        <inputExpression id="urgency_expression" typeRef="string"><text>urgency</text></inputExpression>
      </input>
      <output id="priority_output" label="Priority" name="priority" typeRef="string"/>
      <rule id="rule_high">
        <inputEntry id="rule_high_in"><text>"high"</text></inputEntry>
        <outputEntry id="rule_high_out"><text>"P1"</text></outputEntry>
      </rule>
      <rule id="rule_any">
        <inputEntry id="rule_any_in"><text>-</text></inputEntry>
        <outputEntry id="rule_any_out"><text>"P3"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

CALENDAR = """name = "cn-workdays"
time_zone = "Asia/Shanghai"

[hours]
monday = ["09:00-12:00", "13:00-18:00"]
tuesday = ["09:00-12:00", "13:00-18:00"]
wednesday = ["09:00-12:00", "13:00-18:00"]
thursday = ["09:00-12:00", "13:00-18:00"]
friday = ["09:00-12:00", "13:00-18:00"]
saturday = []
sunday = []
"""

MANIFEST = """name = "test"
main_process = "ticket"
default_calendar = "cn-workdays"
"""


def valid_files() -> dict[str, bytes]:
    return {
        "bundle.toml": MANIFEST.encode(),
        "support.bpmn": SUPPORT.encode(),
        "review.bpmn": REVIEW.encode(),
        "dmn/priority.dmn": PRIORITY_DMN.encode(),
        "calendars/cn-workdays.toml": CALENDAR.encode(),
    }


def changed(path: str, old: str, new: str, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The valid bundle with one replacement in one file (the replaced text must be there)."""
    files = dict(files or valid_files())
    text = files[path].decode()
    assert old in text, f"{old!r} not in {path}"
    files[path] = text.replace(old, new, 1).encode()
    return files


def rejected(files: dict[str, bytes]) -> tuple[BundleProblem, ...]:
    with pytest.raises(BundleRejected) as caught:
        compile_bundle(files)
    return caught.value.problems


def problem_at(problems: tuple[BundleProblem, ...], file: str, element_id: str, *words: str) -> BundleProblem:
    """The problem about ``element_id`` in ``file`` whose message has all ``words``."""
    for problem in problems:
        if problem.file == file and problem.element_id == element_id and all(w in problem.message for w in words):
            return problem
    raise AssertionError(f"no problem at {file}#{element_id} with {words}; got:\n" + "\n".join(map(str, problems)))


# -- a valid bundle ------------------------------------------------------------------------------


def test_valid_bundle_compiles_with_user_task_extensions() -> None:
    bundle = compile_bundle(valid_files())

    assert isinstance(bundle, CompiledBundle)
    assert (bundle.name, bundle.main_process, bundle.default_calendar) == ("test", "ticket", "cn-workdays")
    assert bundle.process_ids == ("dual_review", "ticket")
    assert set(bundle.subprocess_specs) == {"dual_review"}
    assert set(bundle.calendars) == {"cn-workdays"}
    assert len(bundle.checksum) == 64
    handle = bundle.process_spec.task_specs["handle"]
    assert handle.extensions["candidateGroups"] == "tier1,team_lead"
    assert handle.extensions["sla.start"] == "resolve:resolve_within"
    check = bundle.subprocess_specs["dual_review"].task_specs["check"]
    assert check.extensions == {"candidateGroups": "tier2", "fourEyes.excludePerformerOf": "perform"}
    # Properties on events and gateways too (CamundaParser gives those nothing).
    assert bundle.process_spec.task_specs["done"].extensions == {"sla.stop": "resolve"}
    assert bundle.warnings == ()


def _fake_due(duration: str, calendar: str) -> str:
    return "2030-01-01T09:00:00+00:00"


class _Engine(SandboxedScriptEngine):  # type: ignore[misc]
    """As the runner's: a message throw event without a payload expression evaluates None."""

    def evaluate(self, task: Any, expression: Any, external_context: Any = None) -> Any:
        return None if expression is None else super().evaluate(task, expression, external_context)


def test_compiled_specs_run_and_keep_extensions_across_save_and_restore() -> None:
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

    from services.workflow.adapters.engine import state

    bundle = compile_bundle(valid_files())
    engine = _Engine(names={"due": _fake_due})
    workflow = BpmnWorkflow(bundle.process_spec, bundle.subprocess_specs, script_engine=engine)
    workflow.get_tasks(state=TaskState.READY)[0].data.update(urgency="high", resolve_within="PT4H")
    workflow.do_engine_steps()
    [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert task.task_spec.bpmn_id == "handle"
    assert task.data["priority"] == "P1"  # the DMN ran in the sandbox

    restored = state.load(state.dump(workflow), bundle.process_spec, bundle.subprocess_specs)
    [task] = restored.get_tasks(state=TaskState.READY, manual=True)
    assert task.task_spec.extensions["candidateGroups"] == "tier1,team_lead"

    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))
    full = serializer.deserialize_json(serializer.serialize_json(workflow))
    [task] = full.get_tasks(state=TaskState.READY, manual=True)
    assert task.task_spec.extensions == {"candidateGroups": "tier1,team_lead", "sla.start": "resolve:resolve_within"}


def test_problems_are_all_reported_at_once_sorted_by_file_then_element() -> None:
    files = changed("support.bpmn", 'camunda:decisionRef="priority"', 'camunda:decisionRef="severity"')
    files = changed("support.bpmn", 'calledElement="dual_review"', 'calledElement="nope"', files)
    files = changed("review.bpmn", "reviewed = True", "import os", files)
    files = changed("dmn/priority.dmn", '<text>"high"</text>', "<text>[1..5]</text>", files)

    problems = rejected(files)

    assert [(p.file, p.element_id) for p in problems] == [
        ("dmn/priority.dmn", "rule_high"),
        ("review.bpmn", "record"),
        ("support.bpmn", "classify"),
        ("support.bpmn", "review"),
    ]
    assert str(problems[1]).startswith("review.bpmn: record: script 'import os' is not allowed")


# -- sandbox: diagram code ---------------------------------------------------------------------


def test_import_in_a_script_is_rejected() -> None:
    problems = rejected(changed("review.bpmn", "reviewed = True", "import os\nreviewed = os.getcwd()"))
    problem_at(problems, "review.bpmn", "record", "import statements are not allowed")


def test_dunder_walk_in_a_condition_is_rejected() -> None:
    condition = 'priority in ("P0", "P1")'
    problems = rejected(changed("support.bpmn", condition, "().__class__.__base__.__subclasses__()"))
    problem_at(problems, "support.bpmn", "f_review", "condition", "__class__", "invalid attribute name")


def test_endless_loops_compile_their_time_limit_is_a_run_time_matter() -> None:
    # Nothing static can tell a long loop from an endless one: these deploy, and the sandbox's step
    # deadline stops them at run time (tests/workflow/test_sandbox.py).
    compile_bundle(changed("review.bpmn", "reviewed = True", "while True:\n    pass"))
    endless_condition = "any(True for i in range(100000) for j in range(100000) for k in range(100000))"
    compile_bundle(changed("support.bpmn", 'priority in ("P0", "P1")', endless_condition))
    # A statement is not an expression: a `while` loop in a condition does not even parse.
    problems = rejected(changed("support.bpmn", 'priority in ("P0", "P1")', "while True: pass"))
    problem_at(problems, "support.bpmn", "f_review", "condition", "not allowed")


def test_feel_range_in_a_dmn_cell_is_rejected_with_the_python_to_write() -> None:
    problems = rejected(changed("dmn/priority.dmn", '<text>"high"</text>', "<text>[1..5]</text>"))
    problem_at(problems, "dmn/priority.dmn", "rule_high", 'input "Urgency"', "FEEL", "write 1 <= ? <= 5")


def test_feel_list_and_not_in_dmn_cells_are_rejected_with_the_python_to_write() -> None:
    problems = rejected(changed("dmn/priority.dmn", '<text>"high"</text>', '<text>"high","urgent"</text>'))
    problem_at(problems, "dmn/priority.dmn", "rule_high", "FEEL", 'write ? in ("high","urgent")')
    problems = rejected(changed("dmn/priority.dmn", '<text>"high"</text>', '<text>not("low")</text>'))
    problem_at(problems, "dmn/priority.dmn", "rule_high", "FEEL", 'write ? != "low"')


def test_python_dmn_cells_are_accepted() -> None:
    for cell in ('? in ("high", "urgent")', "&gt;= 3", '"high"', "1 &lt; ? &lt; 5"):
        compile_bundle(changed("dmn/priority.dmn", '<text>"high"</text>', f"<text>{cell}</text>"))


def test_dmn_table_without_catch_all_rule_is_rejected() -> None:
    files = valid_files()
    dmn = files["dmn/priority.dmn"].decode()
    start, end = dmn.index('<rule id="rule_any">'), dmn.index("</decisionTable>")
    files["dmn/priority.dmn"] = (dmn[:start] + dmn[end:]).encode()
    problems = rejected(files)
    problem_at(problems, "dmn/priority.dmn", "priority", "not a catch-all", 'add a last rule with "-"')


def test_unquoted_duration_in_a_timer_is_rejected() -> None:
    problems = rejected(changed("support.bpmn", '"PT30M"</bpmn:timeDuration>', "PT30M</bpmn:timeDuration>"))
    problem_at(problems, "support.bpmn", "remind", 'write "PT30M" with quotes')


def test_juel_in_a_timer_and_a_condition_is_rejected_with_the_python_to_write() -> None:
    files = changed("support.bpmn", '"PT30M"</bpmn:timeDuration>', "${reminder}</bpmn:timeDuration>")
    files = changed("support.bpmn", 'priority in ("P0", "P1")', '${priority == "P1"}', files)
    problems = rejected(files)
    problem_at(problems, "support.bpmn", "remind", "JUEL", "write 'reminder'")
    problem_at(problems, "support.bpmn", "f_review", "JUEL", "write 'priority == \"P1\"'")


def test_constant_timer_values_are_checked_as_the_engine_reads_them() -> None:
    problems = rejected(changed("support.bpmn", '"PT30M"</bpmn:timeDuration>', '"P2000000Y"</bpmn:timeDuration>'))
    problem_at(problems, "support.bpmn", "remind", "exceed")
    problems = rejected(changed("support.bpmn", '"PT30M"</bpmn:timeDuration>', '"30 minutes"</bpmn:timeDuration>'))
    problem_at(problems, "support.bpmn", "remind", "not an ISO 8601 duration")
    naive = '"2030-01-01T09:00:00"</bpmn:timeDate>'
    problems = rejected(changed("support.bpmn", 'due("PT8H", "cn-workdays")</bpmn:timeDate>', naive))
    problem_at(problems, "support.bpmn", "overdue", "no UTC offset")


def test_due_with_an_unknown_calendar_is_rejected() -> None:
    problems = rejected(changed("support.bpmn", 'due("PT8H", "cn-workdays")', 'due("PT8H", "mars")'))
    problem_at(problems, "support.bpmn", "overdue", "no calendar 'mars'", "calendars/mars.toml")


# -- references ----------------------------------------------------------------------------------


def test_business_rule_task_naming_a_missing_decision_is_rejected() -> None:
    problems = rejected(changed("support.bpmn", 'camunda:decisionRef="priority"', 'camunda:decisionRef="severity"'))
    problem = problem_at(problems, "support.bpmn", "classify", "missing DMN", "'severity'", "decisions: priority")
    assert problems == (problem,)  # SpiffWorkflow's own complaint about it is not repeated


def test_business_rule_task_without_decision_ref_is_reported_once() -> None:
    # SpiffWorkflow's parser trips over it with a KeyError; only the precise problem is reported.
    problems = rejected(changed("support.bpmn", ' camunda:decisionRef="priority"', ""))
    assert [(p.file, p.element_id) for p in problems] == [("support.bpmn", "classify")]
    assert "no camunda:decisionRef: set Implementation to DMN" in problems[0].message


def test_a_dmn_file_with_a_schema_error_is_not_also_reported_missing() -> None:
    files = changed(
        "dmn/priority.dmn", '<decision id="priority" name="Priority">', '<decision id="priority" name="P" bad="1">'
    )
    problems = rejected(files)
    assert [(p.file, p.element_id) for p in problems] == [("dmn/priority.dmn", "priority")]
    assert problems[0].message.startswith("line 4: Element 'dmn:decision', attribute 'bad'")


def test_call_activity_naming_a_missing_process_is_rejected() -> None:
    problems = rejected(changed("support.bpmn", 'calledElement="dual_review"', 'calledElement="dual_reveiw"'))
    problem_at(problems, "support.bpmn", "review", "'dual_reveiw' is not in the bundle", "dual_review, ticket")


def test_duplicate_process_ids_are_rejected() -> None:
    files = valid_files() | {"copy.bpmn": REVIEW.encode()}
    problems = rejected(files)
    assert problems == (
        BundleProblem("review.bpmn", "dual_review", "process id 'dual_review' is also used in copy.bpmn"),
    )


def test_sla_properties_must_follow_the_conventions() -> None:
    problems = rejected(changed("support.bpmn", 'value="resolve:resolve_within"', 'value="resolve"'))
    problem_at(problems, "support.bpmn", "handle", "'resolve' is not clock:variable", "assign:assign_within")
    problem_at(problems, "support.bpmn", "done", "sla.stop: no sla.start in the bundle starts clock 'resolve'")


def test_four_eyes_rule_must_name_user_tasks_of_the_same_process() -> None:
    problems = rejected(changed("review.bpmn", 'value="perform"', 'value="perfrom"'))
    problem_at(problems, "review.bpmn", "check", "'perfrom' is not a user task of this process", "check, perform")


# -- what the engine does not run ---------------------------------------------------------------

TWO_TIMER_GATEWAY = """<bpmn:eventBasedGateway id="race"/>
    <bpmn:sequenceFlow id="race_1" sourceRef="race" targetRef="wait_1"/>
    <bpmn:sequenceFlow id="race_2" sourceRef="race" targetRef="wait_2"/>
    <bpmn:intermediateCatchEvent id="wait_1">
      <bpmn:timerEventDefinition id="wait_1_def">
        <bpmn:timeDuration>"PT1H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="wait_2">
      <bpmn:timerEventDefinition id="wait_2_def">
        <bpmn:timeDuration>"PT2H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>"""


@pytest.mark.parametrize(
    ("snippet", "element_id", "words"),
    [
        (
            '<bpmn:intermediateThrowEvent id="jump"><bpmn:linkEventDefinition id="jump_def" name="again"/>'
            "</bpmn:intermediateThrowEvent>",
            "jump",
            ("link events are not supported", "draw a sequence flow"),
        ),
        (
            '<bpmn:boundaryEvent id="undo" attachedToRef="perform"><bpmn:compensateEventDefinition id="undo_def"/>'
            "</bpmn:boundaryEvent>",
            "undo",
            ("compensation is not supported", "model the undo steps"),
        ),
        (
            '<bpmn:intermediateCatchEvent id="wait_until"><bpmn:conditionalEventDefinition id="wait_until_def">'
            '<bpmn:condition xsi:type="bpmn:tFormalExpression">ready</bpmn:condition>'
            "</bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>",
            "wait_until",
            ("conditional events do not fire", "use an exclusive gateway"),
        ),
        (TWO_TIMER_GATEWAY, "race", ("2 timers (wait_1, wait_2)", "only the first is honoured", "keep one timer")),
    ],
    ids=["link event", "compensation", "conditional event", "event gateway with two timers"],
)
def test_unsupported_elements_are_rejected_even_when_unreachable(
    snippet: str, element_id: str, words: tuple[str, ...]
) -> None:
    problems = rejected(changed("review.bpmn", "  </bpmn:process>", f"    {snippet}\n  </bpmn:process>"))
    problem_at(problems, "review.bpmn", element_id, *words)


def test_service_task_is_rejected_with_what_to_use_instead() -> None:
    script_task = REVIEW[REVIEW.index('<bpmn:scriptTask id="record"') : REVIEW.index("</bpmn:scriptTask>") + 18]
    problems = rejected(changed("review.bpmn", script_task, '<bpmn:serviceTask id="record" camunda:class="x.Y"/>'))
    problem_at(problems, "review.bpmn", "record", "service tasks never complete", "use a script task")


def test_what_the_engine_would_silently_ignore_is_rejected() -> None:
    files = changed(
        "support.bpmn",
        '<bpmn:sequenceFlow id="f4" sourceRef="handle" targetRef="gateway"/>',
        '<bpmn:sequenceFlow id="f4" sourceRef="handle" targetRef="gateway">'
        "<bpmn:conditionExpression>urgent</bpmn:conditionExpression></bpmn:sequenceFlow>",
    )
    files = changed(
        "support.bpmn",
        "<camunda:properties>",
        '<camunda:executionListener event="start" class="com.acme.Notify"/><camunda:properties>',
        files,
    )
    problems = rejected(files)
    problem_at(problems, "support.bpmn", "f4", "flow leaving a userTask is ignored", "put an exclusive gateway")
    problem_at(problems, "support.bpmn", "handle", "listeners are not run", "use a script task")


def test_interrupting_event_subprocess_deploys_with_a_warning() -> None:
    event_subprocess = """<bpmn:subProcess id="on_cancel" triggeredByEvent="true">
      <bpmn:startEvent id="cancel_start"><bpmn:messageEventDefinition id="cancel_def" messageRef="msg_cancelled"/>
      </bpmn:startEvent>
      <bpmn:sequenceFlow id="c1" sourceRef="cancel_start" targetRef="cancel_end"/>
      <bpmn:endEvent id="cancel_end"/>
    </bpmn:subProcess>
  </bpmn:process>"""
    files = changed("review.bpmn", "  </bpmn:process>", event_subprocess)
    files = changed(
        "review.bpmn",
        "  <bpmn:process",
        '  <bpmn:message id="msg_cancelled" name="ticket.cancelled"/>\n  <bpmn:process',
        files,
    )
    bundle = compile_bundle(files)
    [warning] = bundle.warnings
    assert warning.startswith("review.bpmn: cancel_start: isInterrupting is ignored")


def test_what_deploys_but_may_not_do_what_was_meant_is_warned_about() -> None:
    files = changed(
        "review.bpmn",
        '<bpmn:userTask id="perform" camunda:candidateGroups="tier2"/>',
        '<bpmn:userTask id="perform" camunda:assignee="assignee"/>',
    )
    files = changed("support.bpmn", '<camunda:in variables="all"/>', '<camunda:in source="ticket" target="t"/>', files)
    assert compile_bundle(files).warnings == (
        "review.bpmn: perform: assignee 'assignee' is taken as a user id, not evaluated: if it names a variable, "
        "write =assignee",
        "support.bpmn: review: camunda:in/out mappings are ignored: the called process gets all variables and all "
        "of its variables are copied back",
    )


# -- malformed and hostile files -----------------------------------------------------------------


def test_malformed_xml_is_rejected_naming_the_line() -> None:
    problems = rejected(
        changed(
            "review.bpmn",
            '<bpmn:userTask id="perform" camunda:candidateGroups="tier2"/>',
            '<bpmn:userTask id="perform" camunda:candidateGroups="tier2">',
        )
    )
    problem = problem_at(problems, "review.bpmn", "", "not well-formed XML")
    assert problem.message.startswith("line 21, column 18: not well-formed XML")
    assert "userTask line 6" in problem.message  # the unclosed tag, where it opened
    # Its process cannot be found, and the message says where it may be.
    problem_at(problems, "support.bpmn", "review", "'dual_review' is not in the bundle", "it may be in review.bpmn")


def test_schema_violation_is_rejected_naming_line_and_element() -> None:
    problems = rejected(
        changed("review.bpmn", 'id="dual_review" isExecutable="true"', 'id="dual_review" isExecutable="yes"')
    )
    problem_at(problems, "review.bpmn", "dual_review", "line 3:", "bpmn:process", "xs:boolean")


XXE = """<?xml version="1.0"?>
<!DOCTYPE bpmn:definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="ticket" name="&secret;"><bpmn:startEvent id="s"/></bpmn:process>
</bpmn:definitions>
"""
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10 if n > 1 else "&lol;" * 10}">\n' for n in range(1, 10)
    )
    + ']>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol9;</bpmn:definitions>\n'
)


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["external entity", "billion laughs"])
def test_entity_payloads_are_rejected_without_expansion(payload: str) -> None:
    started = time.perf_counter()
    problems = rejected(valid_files() | {"evil.bpmn": payload.encode()})
    assert time.perf_counter() - started < 1.0
    assert problems == (
        BundleProblem("evil.bpmn", "", "line 2: <!DOCTYPE> declarations are not allowed in diagrams: remove it"),
    )


def test_huge_file_is_rejected_by_size_before_anything_is_parsed() -> None:
    started = time.perf_counter()
    files = valid_files() | {"support.bpmn": b"<" * (50 * 1024 * 1024)}
    problems = rejected(files)
    assert time.perf_counter() - started < 2.0
    total = sum(map(len, files.values()))
    assert problems == (
        BundleProblem("", "", f"{total:,} bytes in all; a bundle may have at most 10 MiB"),
        BundleProblem("support.bpmn", "", "52,428,800 bytes; a file may have at most 2 MiB"),
    )  # and nothing about the file not being XML: it was never parsed


def test_camunda_8_diagram_is_rejected_with_the_export_to_use() -> None:
    zeebe = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="c8" isExecutable="true">
    <bpmn:serviceTask id="job"><bpmn:extensionElements><zeebe:taskDefinition type="mail"/></bpmn:extensionElements>
    </bpmn:serviceTask>
  </bpmn:process>
</bpmn:definitions>
"""
    problems = rejected(valid_files() | {"c8.bpmn": zeebe.encode()})
    assert problems == (
        BundleProblem("c8.bpmn", "", "Camunda 8 (Zeebe) diagrams are not supported; export for Camunda Platform 7"),
    )


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("../x.bpmn", "leaves the bundle"),
        ("dmn/../../x.dmn", "leaves the bundle"),
        ("/etc/x.bpmn", "paths are relative"),
        ("C:\\x.bpmn", "paths are relative"),
        ("notes.txt", "unexpected file"),
        ("calendars/deep/x.toml", "unexpected file"),
    ],
)
def test_paths_outside_the_bundle_or_of_unknown_files_are_rejected(path: str, words: str) -> None:
    problems = rejected(valid_files() | {path: REVIEW.encode()})
    assert [(p.file, p.element_id) for p in problems] == [(path, "")]
    assert words in problems[0].message


# -- bundle.toml ---------------------------------------------------------------------------------


def test_missing_bundle_toml_is_rejected() -> None:
    files = valid_files()
    del files["bundle.toml"]
    problems = rejected(files)
    assert problems == (
        BundleProblem("bundle.toml", "", "missing: add bundle.toml with name, main_process and default_calendar"),
    )


def test_bundle_toml_naming_a_missing_process_or_calendar_is_rejected() -> None:
    files = changed("bundle.toml", 'main_process = "ticket"', 'main_process = "tickets"')
    files = changed("bundle.toml", 'default_calendar = "cn-workdays"', 'default_calendar = "de-workdays"', files)
    problems = rejected(files)
    problem_at(problems, "bundle.toml", "", "main_process 'tickets' is not a process", "dual_review, ticket")
    problem_at(problems, "bundle.toml", "", "default_calendar 'de-workdays'", "calendars: cn-workdays")


def test_bundle_toml_syntax_error_names_the_line() -> None:
    problems = rejected(changed("bundle.toml", 'main_process = "ticket"', "main_process = ticket"))
    problem_at(problems, "bundle.toml", "", "not valid TOML", "line 2")


def test_calendar_problems_are_reported_per_file() -> None:
    problems = rejected(changed("calendars/cn-workdays.toml", 'monday = ["09:00-12:00", ', 'monday = ["09:00-25:00", '))
    problem_at(problems, "calendars/cn-workdays.toml", "", "hours.monday[1]", "not a time of day")


# -- reading a folder ------------------------------------------------------------------------------


def test_read_bundle_dir_reads_the_deployable_files_only(tmp_path: Path) -> None:
    for path, content in valid_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    (tmp_path / "organisations.toml").write_text("[acme]\n")
    (tmp_path / "README.md").write_text("# notes\n")
    (tmp_path / "calendars" / "README.md").write_text("# notes\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "old.bpmn").write_text("<x/>")
    (tmp_path / "big.bpmn").write_bytes(b" " * (MAX_FILE_SIZE + 100))

    files = read_bundle_dir(tmp_path)

    assert sorted(files) == sorted([*valid_files(), "big.bpmn"])
    assert files["dmn/priority.dmn"] == PRIORITY_DMN.encode()
    assert len(files["big.bpmn"]) == MAX_FILE_SIZE + 1  # enough to be rejected, without reading it all
    del files["big.bpmn"]
    assert compile_bundle(files).checksum == compile_bundle(valid_files()).checksum


def test_parser_reads_each_elements_own_properties() -> None:
    from lxml import etree

    from services.workflow.adapters.engine.parser import SupportParser

    nested = """  <bpmn:process id="nested" isExecutable="true">
    <bpmn:startEvent id="n_start"/>
    <bpmn:sequenceFlow id="n1" sourceRef="n_start" targetRef="inner"/>
    <bpmn:subProcess id="inner">
      <bpmn:startEvent id="i_start"/>
      <bpmn:sequenceFlow id="i1" sourceRef="i_start" targetRef="approve"/>
      <bpmn:userTask id="approve" camunda:candidateGroups="team_lead" camunda:assignee="=requester_id">
        <bpmn:extensionElements>
          <camunda:properties><camunda:property name="sla.stop" value="assign"/></camunda:properties>
        </bpmn:extensionElements>
        <bpmn:multiInstanceLoopCharacteristics camunda:collection="approvers" camunda:elementVariable="approver"/>
      </bpmn:userTask>
      <bpmn:sequenceFlow id="i2" sourceRef="approve" targetRef="i_end"/>
      <bpmn:endEvent id="i_end"/>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="n2" sourceRef="inner" targetRef="n_end"/>
    <bpmn:endEvent id="n_end"/>
  </bpmn:process>
</bpmn:definitions>
"""
    parser = SupportParser()
    parser.add_bpmn_xml(etree.fromstring((DEFINITIONS + nested).encode()), filename="nested.bpmn")
    parser.get_spec("nested")
    inner = parser.get_spec("inner")

    # CamundaParser reads `.//` properties: the subprocess would carry its user task's sla.stop.
    assert parser.get_spec("nested").task_specs["inner"].extensions == {}
    expected = {"sla.stop": "assign", "candidateGroups": "team_lead", "assignee": "=requester_id"}
    assert inner.task_specs["approve"].extensions == expected  # the multi-instance wrapper
    assert inner.task_specs["approve [child]"].extensions == expected  # the user task people complete
