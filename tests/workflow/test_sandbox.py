"""Diagram code runs sandboxed: escapes are rejected when compiled (so at deploy), endless code
fails its step within the limit and the worker carries on, and real diagrams — gateways, scripts,
DMN tables, timers, message correlations — all evaluate through the sandbox."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from xml.sax.saxutils import escape

import pytest
from RestrictedPython.compile import compile_restricted_eval
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from services.workflow.adapters.sandbox import (
    DIAGRAM_NAMES,
    SandboxedScriptEngine,
    SandboxLimitExceeded,
    SandboxTimeout,
    SandboxViolation,
    check_expression,
    check_timer_value,
    compile_expression,
    compile_script,
    evaluate_expression,
    execute_script,
    restricted_globals,
    time_limit,
)

LIMIT = 0.2  # seconds per step in these tests
SLACK = 0.5  # how late a timeout may fire on a busy 2-core machine


# -- rejected when compiled --------------------------------------------------------------------

ESCAPES = {
    "__import__('os')": '"__import__" is an invalid variable name',
    "().__class__.__base__.__subclasses__()": '"__subclasses__" is an invalid attribute name',
    "x.__globals__": '"__globals__" is an invalid attribute name',
    "getattr(x, '__class__')": '"getattr" is not available',
    "open('/etc/passwd')": '"open" is not available',
    "eval('1')": "Eval calls are not allowed",
    "exec('1')": "Exec calls are not allowed",
    "type(x).mro()[1]": '"type()" is not available',
    "[c for c in ().__class__.__mro__]": '"__mro__" is an invalid attribute name',
    'f"{x.__class__}"': '"__class__" is an invalid attribute name',
    '"{0.__class__}".format(1)': '".format()" is not available',
    '"{0.__class__}".format_map({})': '".format_map()" is not available',
    "(x for x in []).gi_frame": '"gi_frame" is a restricted name',
    "(lambda: 1).__code__": '"__code__" is an invalid attribute name',
    "compile('1', 'f', 'eval')": '"compile" is not available',
    "vars()": '"vars" is not available',
    "x._private": '"_private" is an invalid attribute name',
}


@pytest.mark.parametrize(("source", "problem"), list(ESCAPES.items()), ids=list(ESCAPES))
def test_escape_is_rejected_when_compiled(source: str, problem: str) -> None:
    with pytest.raises(SandboxViolation, match="Line 1: ") as raised:
        compile_expression(source)
    assert any(problem in p for p in raised.value.problems), raised.value.problems
    assert any(problem in p for p in check_expression(source, "expression"))
    assert check_expression(source, "script")  # the same line as a script statement is refused too


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("import os", "import statements are not allowed"),
        ("from os import path", "import statements are not allowed"),
        ("x = 1\nimport subprocess as s", "Line 2: import statements are not allowed"),
        ("class A:\n    pass", "class definitions are not allowed"),
        ("with x:\n    pass", "with statements are not allowed"),
        ("try:\n    pass\nexcept* ValueError:\n    pass", "TryStar statements are not allowed"),
        ("def f(__x):\n    pass", '"__x" is an invalid variable name'),
        ("print('hello')", '"print" is not available'),
    ],
)
def test_script_statement_is_rejected_when_compiled(script: str, problem: str) -> None:
    problems = check_expression(script, "script")
    assert any(problem in p for p in problems), problems
    with pytest.raises(SandboxViolation):
        compile_script(script)


def test_syntax_errors_are_reported_with_their_line() -> None:
    assert check_expression("x = (", "script") == ["Line 1: SyntaxError: '(' was never closed at statement: 'x = ('"]
    assert check_expression("priority ==", "expression")[0].startswith("Line 1: SyntaxError")


def test_check_expression_knows_only_two_kinds() -> None:
    with pytest.raises(ValueError, match="kind"):
        check_expression("1", "sql")  # type: ignore[arg-type]


def test_str_format_is_also_blocked_at_run_time() -> None:
    """Under RestrictedPython's own policy `.format` compiles; the sandbox's getattr still refuses it."""
    compiled = compile_restricted_eval('"{0.__class__}".format(1)')
    assert not compiled.errors
    assert compiled.code is not None
    with pytest.raises(NotImplementedError, match="format"):
        eval(compiled.code, restricted_globals())


@pytest.mark.parametrize(
    "source",
    ["x.__class__", "x.gi_frame", "(lambda: 0).__globals__"],
)
def test_evaluating_rejected_code_raises_before_running(source: str) -> None:
    with pytest.raises(SandboxViolation):
        evaluate_expression(source, {"x": 1})


# -- allowed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "data", "value"),
    [
        ('priority == "P0" and vip', {"priority": "P0", "vip": True}, True),
        ('priority == "P0" and vip', {"priority": "P2", "vip": True}, False),
        ('type == "incident"', {"type": "incident"}, True),  # a form field may be called `type`
        ("len(tags) > 1 and 'vpn' in tags", {"tags": ["vpn", "mfa"]}, True),
        ('requester["department"].lower()', {"requester": {"department": "HR"}}, "hr"),
        ("sum(i.get('hours', 0) for i in items)", {"items": [{"hours": 2}, {"hours": 3}, {}]}, 5),
        ("sorted(xs, key=lambda x: -x)[0]", {"xs": [3, 9, 1]}, 9),
        ("{k: v for k, v in zip('ab', [1, 2])}", {}, {"a": 1, "b": 2}),
        ('f"{ticket}-{count:03d}"', {"ticket": "T", "count": 7}, "T-007"),
        ("  impact >= 3  ", {"impact": 4}, True),  # DMN cells often carry blanks
        ("max(range(10)) + abs(-2) + round(2.4)", {}, 13),
    ],
)
def test_ordinary_expressions_evaluate(expression: str, data: dict[str, Any], value: Any) -> None:
    assert check_expression(expression, "expression") == []
    assert evaluate_expression(expression, data) == value


def test_evaluating_does_not_change_task_data() -> None:
    data = {"n": 1}
    assert evaluate_expression("(m := n + 1)", data) == 2
    assert data == {"n": 1}


def test_scripts_read_and_write_task_data() -> None:
    data: dict[str, Any] = {"items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 0}], "ticket": {"tags": []}}
    execute_script(
        "\n".join(
            [
                "wanted = [i['sku'] for i in items if i['qty'] > 0]",
                "ticket['tags'].append('hardware')",
                "ticket['approved'] = len(wanted) == 1",
                "total = 0",
                "for i in items:",
                "    total += i['qty']",
                "first, second = items",
                "counts = {}",
                "for n, item in enumerate(items):",
                "    counts[item['sku']] = n",
                "del counts['B']",
                "def double(v):",
                "    return v * 2",
                "doubled = double(total)",
                "try:",
                "    missing = ticket['nope']",
                "except KeyError:",
                "    missing = None",
            ]
        ),
        data,
    )
    assert data["wanted"] == ["A"]
    assert data["ticket"] == {"tags": ["hardware"], "approved": True}
    assert (data["total"], data["doubled"], data["counts"], data["missing"]) == (2, 4, {"A": 0}, None)
    assert data["first"] == {"sku": "A", "qty": 2}
    assert "__builtins__" not in data


def test_datetime_facade_does_arithmetic_with_offsets() -> None:
    data: dict[str, Any] = {"opened": "2025-03-07T16:30:00+01:00"}
    execute_script(
        "\n".join(
            [
                "due = parse_datetime(opened) + timedelta(hours=4) + parse_duration('PT30M')",
                "due_text = due.astimezone(UTC).isoformat()",
                "overdue = now() > due",
                "weekday = due.weekday()",
            ]
        ),
        data,
    )
    assert data["due_text"] == "2025-03-07T20:00:00+00:00"
    assert data["overdue"] is True
    assert data["weekday"] == 4
    assert evaluate_expression("now()", {}).tzinfo is UTC
    assert evaluate_expression("now() - now() < timedelta(seconds=1)", {}) is True
    with pytest.raises(ValueError, match="no UTC offset"):
        evaluate_expression('parse_datetime("2025-03-07T16:30:00")', {})


def test_writes_only_reach_dicts_and_lists() -> None:
    with pytest.raises(TypeError, match="dicts and lists only"):
        execute_script("d = now()\nd.year = 1", {})
    with pytest.raises(TypeError, match="dicts and lists only"):
        execute_script("s = 'abc'\ns[0] = 'x'", {})


def test_missing_attributes_fail_loudly() -> None:
    """A typo in a condition must not silently read as None (RestrictedPython's plain safer_getattr would)."""
    with pytest.raises(AttributeError):
        evaluate_expression("ticket.priorty", {"ticket": "x"})


def test_diagram_names_are_exactly_the_documented_ones() -> None:
    assert set(DIAGRAM_NAMES) == {
        *("None", "True", "False", "bool", "int", "float", "str", "list", "tuple", "dict", "set", "frozenset"),
        *("abs", "all", "any", "chr", "divmod", "enumerate", "filter", "isinstance", "len", "map", "max", "min"),
        *("ord", "range", "repr", "reversed", "round", "sorted", "sum", "zip"),
        *("Exception", "ArithmeticError", "AssertionError", "IndexError", "KeyError", "LookupError"),
        *("TypeError", "ValueError", "ZeroDivisionError"),
        *("now", "parse_datetime", "parse_duration", "timedelta", "UTC"),
    }
    assert not [name for name, value in DIAGRAM_NAMES.items() if isinstance(value, ModuleType)]


@pytest.mark.parametrize("name", ["type", "object", "iter", "math", "random", "string", "BaseException", "SystemExit"])
def test_everything_else_is_undefined(name: str) -> None:
    with pytest.raises(NameError):
        evaluate_expression(f"({name},)[0]", {})


@pytest.mark.parametrize(
    "source",
    ["'x' * 10**9", "[0] * 10**7", "10 ** 10**8", "1 << 10**9", "range(10**9)", "(2**60) * (2**99990)"],
)
def test_oversized_values_are_refused(source: str) -> None:
    with pytest.raises(SandboxLimitExceeded, match="sandbox limit"):
        evaluate_expression(source, {})


@pytest.mark.parametrize("source", ["sum([[0] * 1000] * 1000, [])", "sum(['a', 'b'], ())"])
def test_sum_adds_only_numbers(source: str) -> None:
    with pytest.raises(TypeError, match="numbers and timedeltas only"):
        evaluate_expression(source, {})
    assert evaluate_expression("sum([timedelta(hours=1)] * 3, timedelta())", {}) == timedelta(hours=3)


@pytest.mark.parametrize("value", ["P2000000Y", "P1201M", "R3/P200Y/2025-01-01T00:00:00Z", "P100Y1M"])
def test_timer_durations_that_would_loop_in_spiffworkflow_are_refused(value: str) -> None:
    """SpiffWorkflow adds a timer's months one at a time in host code: P2000000Y took half a minute."""
    with pytest.raises(SandboxLimitExceeded, match="duration in months"):
        check_timer_value(value)
    with pytest.raises(SandboxLimitExceeded):
        evaluate_expression("parse_duration(text)", {"text": value.split("/")[1] if "/" in value else value})


@pytest.mark.parametrize("value", ["P100Y", "PT30M", "R/PT1H", "2025-01-01T00:00:00+00:00", 5, "P1Q"])
def test_ordinary_timer_values_pass(value: object) -> None:
    check_timer_value(value)


def test_growing_a_string_in_a_loop_is_refused() -> None:
    with pytest.raises(SandboxLimitExceeded):
        execute_script("s = 'x' * 1000\nwhile True:\n    s = s + s", {})
    with pytest.raises(SandboxLimitExceeded):
        execute_script("s = ['x'] * 1000\nwhile True:\n    s += s", {})


# -- the time limit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "while True: pass",  # one line: Python 3.11 emits no trace line events for it
        "while True:\n    pass",
        "n = 0\nwhile n >= 0:\n    n += 1",
        # swallowing the timeout does not help: every later tick raises again
        "while True:\n    try:\n        while True: pass\n    except:\n        pass",
        "x = 1\ntry:\n    while True: pass\nexcept:\n    x = 2",
        "def spin():\n    while True:\n        yield 1\ntotal = sum(spin())",
        "def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\nf(60)",
    ],
)
def test_endless_script_times_out(script: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SandboxTimeout, match=r"0\.2 s step limit"):
        execute_script(script, {}, seconds=LIMIT)
    assert time.perf_counter() - started < LIMIT + SLACK


@pytest.mark.parametrize(
    "expression",
    [
        "len([1 for a in range(100000) for b in range(100000)]) > 0",
        "(lambda f: f(f, 60))(lambda f, n: 1 if n == 0 else f(f, n - 1) + f(f, n - 1))",
        "max(map(lambda a: len([b for b in range(100000)]), range(100000)))",
        "any(a < 0 for a in range(100000) for b in range(100000))",
    ],
)
def test_endless_expression_times_out(expression: str) -> None:
    for _ in range(2):  # compiled the first time, taken from the cache the second
        started = time.perf_counter()
        with pytest.raises(SandboxTimeout):
            evaluate_expression(expression, {}, seconds=LIMIT)
        assert time.perf_counter() - started < LIMIT + SLACK


def test_time_limit_only_limits_diagram_code() -> None:
    """Host code is never interrupted or traced; only diagram code carries deadline checks."""
    with time_limit(0.01):
        time.sleep(0.05)
        total = sum(range(10))
    assert total == 45


def test_nested_limits_keep_the_earlier_deadline_and_restore_the_outer() -> None:
    started = time.perf_counter()
    with time_limit(30):
        with pytest.raises(SandboxTimeout), time_limit(LIMIT):
            execute_script("while True: pass", {}, seconds=60)
        assert time.perf_counter() - started < LIMIT + SLACK
        execute_script("for i in range(1000):\n    pass", {})  # back under the outer, later deadline


# -- through SpiffWorkflow -----------------------------------------------------------------------

BPMN = (
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'id="defs" targetNamespace="http://bpmn.io/schema/bpmn">{body}</bpmn:definitions>'
)


def _line(*elements: str) -> str:
    """A process `start -> elements... -> end` (each element's id is its first attribute)."""
    ids = ["start", *(e.split('id="', 1)[1].split('"', 1)[0] for e in elements), "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="flow_{a}_{b}" sourceRef="{a}" targetRef="{b}"/>' for a, b in itertools.pairwise(ids)
    )
    return (
        '<bpmn:process id="proc" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'{"".join(elements)}{flows}<bpmn:endEvent id="end"/></bpmn:process>'
    )


def _script_task(task_id: str, script: str) -> str:
    return (
        f'<bpmn:scriptTask id="{task_id}" scriptFormat="python">'
        f"<bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>"
    )


def _gateway_process(condition: str) -> str:
    return BPMN.format(
        body=f"""<bpmn:process id="proc" isExecutable="true">
  <bpmn:startEvent id="start"/>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="route_by_priority"/>
  <bpmn:exclusiveGateway id="route_by_priority" default="to_normal"/>
  <bpmn:sequenceFlow id="to_urgent" sourceRef="route_by_priority" targetRef="urgent">
    <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}</bpmn:conditionExpression>
  </bpmn:sequenceFlow>
  <bpmn:sequenceFlow id="to_normal" sourceRef="route_by_priority" targetRef="normal"/>
  {_script_task("urgent", 'route = "urgent"')}
  {_script_task("normal", 'route = "normal"')}
  <bpmn:sequenceFlow id="f2" sourceRef="urgent" targetRef="end"/>
  <bpmn:sequenceFlow id="f3" sourceRef="normal" targetRef="end"/>
  <bpmn:endEvent id="end"/>
</bpmn:process>"""
    )


def _run(
    bpmn: str, data: dict[str, Any], *, dmn: str | None = None, engine: PythonScriptEngine | None = None
) -> BpmnWorkflow:
    parser = CamundaParser()
    parser.add_bpmn_str(bpmn.encode(), filename="sandbox-test.bpmn")
    if dmn is not None:
        parser.add_dmn_str(dmn.encode(), filename="sandbox-test.dmn")
    workflow = BpmnWorkflow(
        parser.get_spec("proc"),
        parser.get_subprocess_specs("proc"),
        script_engine=engine or SandboxedScriptEngine(step_time_limit=LIMIT),
    )
    workflow.get_tasks(state=TaskState.READY)[0].data.update(data)
    workflow.do_engine_steps()
    return workflow


def _incident(bpmn: str, data: dict[str, Any], **kwargs: Any) -> WorkflowTaskException:
    with pytest.raises(WorkflowTaskException) as raised:
        _run(bpmn, data, **kwargs)
    return raised.value


@pytest.mark.parametrize(("priority", "route"), [("P0", "urgent"), ("P3", "normal")])
def test_gateway_condition_routes_through_the_sandbox(priority: str, route: str) -> None:
    workflow = _run(_gateway_process('priority == "P0" and vip'), {"priority": priority, "vip": True})
    assert workflow.completed
    assert workflow.data["route"] == route


def test_gateway_condition_that_escapes_fails_that_step() -> None:
    bpmn = _gateway_process('__import__("os").getpid() > 0')
    assert _run(bpmn, {}, engine=PythonScriptEngine()).data["route"] == "urgent"  # the hole being closed
    error = _incident(bpmn, {})
    assert error.task.task_spec.bpmn_id == "route_by_priority"
    assert error.error_type == "SandboxViolation"
    assert '"__import__" is an invalid variable name' in str(error)


def test_endless_gateway_condition_fails_that_step_and_the_worker_goes_on() -> None:
    started = time.perf_counter()
    error = _incident(_gateway_process("len([1 for a in range(100000) for b in range(100000)]) > 0"), {})
    assert time.perf_counter() - started < LIMIT + SLACK
    assert error.task.task_spec.bpmn_id == "route_by_priority"
    assert error.error_type == "SandboxTimeout"
    assert "0.2 s step limit" in str(error)
    # same thread, right after: an ordinary instance runs to the end
    assert _run(_gateway_process('priority == "P0"'), {"priority": "P0"}).data["route"] == "urgent"


def test_endless_script_task_fails_that_step_and_the_worker_goes_on() -> None:
    bpmn = BPMN.format(
        body=_line(_script_task("prepare", "x = 1"), _script_task("spin", "n = 0\nwhile True:\n    n += 1"))
    )
    started = time.perf_counter()
    error = _incident(bpmn, {})
    assert time.perf_counter() - started < LIMIT + SLACK
    assert error.task.task_spec.bpmn_id == "spin"
    assert error.error_type == "SandboxTimeout"
    assert error.line_number in (2, 3)  # the loop, not some line of the sandbox itself
    assert error.error_line in ("while True:", "    n += 1")
    healthy = _run(BPMN.format(body=_line(_script_task("count", "n = len(items)"))), {"items": [1, 2]})
    assert healthy.completed
    assert healthy.data["n"] == 2


def test_script_task_errors_name_the_task_and_line() -> None:
    bpmn = BPMN.format(body=_line(_script_task("tally", "a = 1\nb = counts[5]")))
    error = _incident(bpmn, {"counts": {}})
    assert error.task.task_spec.bpmn_id == "tally"
    assert (error.line_number, error.error_line, error.error_type) == (2, "b = counts[5]", "KeyError")
    assert "KeyError: 5" in str(error)


def test_script_task_that_imports_fails_that_step() -> None:
    error = _incident(BPMN.format(body=_line(_script_task("sneaky", "import os\nos.system('true')"))), {})
    assert error.task.task_spec.bpmn_id == "sneaky"
    assert error.error_type == "SandboxViolation"
    assert "import statements are not allowed" in str(error)


def test_script_task_keeps_only_data_in_the_task() -> None:
    bpmn = BPMN.format(body=_line(_script_task("calc", "f = lambda v: v + 1\nresult = f(1)")))
    workflow = _run(bpmn, {})
    assert workflow.data == {"result": 2}  # no builtins, no functions left to serialize


def _decision(cell: str) -> str:
    return f"""<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="teams" name="Teams"
    namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="pick_team" name="Pick team">
    <decisionTable id="table" hitPolicy="UNIQUE">
      <input id="in_priority" label="Priority">
        <inputExpression id="in_priority_expr" typeRef="string"><text>priority</text></inputExpression>
      </input>
      <output id="out_team" label="Team" name="team" typeRef="string"/>
      <rule id="rule_major">
        <inputEntry id="rule_major_in"><text>{escape(cell)}</text></inputEntry>
        <outputEntry id="rule_major_out"><text>"major-incident"</text></outputEntry>
      </rule>
      <rule id="rule_default">
        <inputEntry id="rule_default_in"><text></text></inputEntry>
        <outputEntry id="rule_default_out"><text>"service-desk"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>"""


DECIDE = BPMN.format(body=_line('<bpmn:businessRuleTask id="decide_team" camunda:decisionRef="pick_team"/>'))


@pytest.mark.parametrize(
    ("cell", "priority", "team"),
    [
        ('"P0"', "P0", "major-incident"),
        ('"P0"', "P2", "service-desk"),
        ('? in ("P0", "P1")', "P1", "major-incident"),
        ('not ? in ("P0", "P1")', "P1", "service-desk"),
    ],
)
def test_dmn_table_decides_through_the_sandbox(cell: str, priority: str, team: str) -> None:
    workflow = _run(DECIDE, {"priority": priority}, dmn=_decision(cell))
    assert workflow.completed
    assert workflow.data["team"] == team


def test_dmn_cell_that_escapes_fails_that_step() -> None:
    dmn = _decision('__import__("os")')
    assert _run(DECIDE, {"priority": "P0"}, dmn=dmn, engine=PythonScriptEngine()).completed  # the hole
    error = _incident(DECIDE, {"priority": "P0"}, dmn=dmn)
    assert error.task.task_spec.bpmn_id == "decide_team"
    assert error.error_type == "SandboxViolation"
    assert "Rule failed on row 1" in str(error)


def test_endless_dmn_cell_times_out() -> None:
    error = _incident(
        DECIDE, {"priority": "P0"}, dmn=_decision("len([1 for a in range(100000) for b in range(100000)])")
    )
    assert error.task.task_spec.bpmn_id == "decide_team"
    assert error.error_type == "SandboxTimeout"


def _timer_process(expression: str) -> str:
    return BPMN.format(
        body=_line(
            '<bpmn:intermediateCatchEvent id="wait_for_customer"><bpmn:timerEventDefinition>'
            f'<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{escape(expression)}</bpmn:timeDuration>'
            "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        )
    )


@pytest.mark.parametrize("expression", ['"PT30M"', 'f"PT{wait_minutes}M"'])
def test_timer_expression_evaluates_through_the_sandbox(expression: str) -> None:
    workflow = _run(_timer_process(expression), {"wait_minutes": 30})
    (pending,) = workflow.waiting_events()
    due = datetime.fromisoformat(pending.value)
    assert abs(due - (datetime.now(UTC) + timedelta(minutes=30))) < timedelta(seconds=30)


def test_timer_duration_from_task_data_cannot_stall_the_worker() -> None:
    started = time.perf_counter()
    error = _incident(_timer_process('f"P{wait_years}Y"'), {"wait_years": 2_000_000})
    assert time.perf_counter() - started < 1
    assert error.task.task_spec.bpmn_id == "wait_for_customer"
    assert error.error_type == "SandboxLimitExceeded"


def test_timer_expression_that_escapes_fails_that_step() -> None:
    error = _incident(_timer_process('"PT30M" if ().__class__ else "PT1M"'), {})
    assert error.task.task_spec.bpmn_id == "wait_for_customer"
    assert error.error_type == "SandboxViolation"


WAIT_FOR_UPDATE = (
    '<bpmn:intermediateCatchEvent id="wait_for_update">'
    '<bpmn:messageEventDefinition id="on_update" messageRef="msg_ticket_updated"/>'
    "</bpmn:intermediateCatchEvent>"
)


def _message_process(retrieval: str) -> str:
    return BPMN.format(
        body=f"""<bpmn:collaboration id="desk">
  <bpmn:participant id="desk_process" processRef="proc"/>
  <bpmn:correlationKey name="ticket">
    <bpmn:correlationPropertyRef>ticket_number</bpmn:correlationPropertyRef>
  </bpmn:correlationKey>
</bpmn:collaboration>
<bpmn:message id="msg_ticket_updated" name="ticket_updated"/>
<bpmn:correlationProperty id="ticket_number" name="Ticket number">
  <bpmn:correlationPropertyRetrievalExpression messageRef="msg_ticket_updated">
    <bpmn:formalExpression>{escape(retrieval)}</bpmn:formalExpression>
  </bpmn:correlationPropertyRetrievalExpression>
</bpmn:correlationProperty>
{_line(WAIT_FOR_UPDATE)}"""
    )


def _deliver_update(workflow: BpmnWorkflow) -> None:
    (waiting,) = workflow.get_tasks(state=TaskState.WAITING)
    payload = {"payload": {"number": "SD-42"}, "result_var": "update"}
    workflow.send_event(BpmnEvent(waiting.task_spec.event_definition, payload))
    workflow.do_engine_steps()


def test_message_correlation_expression_evaluates_through_the_sandbox() -> None:
    workflow = _run(_message_process('payload["number"]'), {})
    _deliver_update(workflow)
    assert workflow.completed
    assert workflow.correlations == {"ticket": {"ticket_number": "SD-42"}}


def test_message_correlation_expression_that_escapes_is_refused() -> None:
    """SpiffWorkflow evaluates correlations via ``script_engine.environment`` directly: sandboxed too."""
    workflow = _run(_message_process("payload.__class__"), {})
    with pytest.raises(SandboxViolation, match="__class__"):
        _deliver_update(workflow)
