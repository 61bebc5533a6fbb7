"""Deploy-time checks of diagram code: conditions, scripts, timer values, DMN cells.

Everything is compiled in the sandbox (``check_expression``), never run, except that constant
timer values are parsed as the engine would parse them. On top of the sandbox's own rules this
catches what modellers bring from Camunda: JUEL ``${...}``, FEEL's ``true``/``false``/``null``,
unquoted ``PT30M`` (a NameError waiting to happen), and checks ``due(duration, calendar)`` calls
whose arguments are literals.

Each function returns messages; the caller knows the file and element they belong to.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Final

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from services.workflow.adapters.sandbox import ExpressionKind, SandboxError, check_expression, check_timer_value

_JUEL = re.compile(r"[$#]\{(.*?)\}", re.S)
#: An ISO 8601 duration, repeating interval or date-time written without quotes.
_BARE_ISO = re.compile(
    r"^(R\d*/)?P[0-9TYMWDHS.,]*$|^\d{4}-\d{2}-\d{2}(T[0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE
)
_NOT_PYTHON: Final = {"true": "True", "false": "False", "null": "None"}
END_OF_DAY: Final = "EOD"
_DUE_EXAMPLE: Final = 'due("PT8H", "cn-workdays")'
TimerKind = str  # "timeDate" | "timeDuration" | "timeCycle"


def code_problems(
    source: str | None, kind: ExpressionKind, what: str, calendars: Collection[str], *, shown: str | None = None
) -> list[str]:
    """Problems with one expression or script; ``what`` names it in the messages ("condition"),
    ``shown`` is the text quoted in them (the source by default)."""
    if source is None or not source.strip():
        return [f"{what} is empty"]
    juel = _JUEL.search(source)
    if juel:
        inner = juel.group(1).strip()
        return [
            f"{what} {source.strip()!r} uses JUEL ${{...}}, which is not supported: expressions are Python, "
            f"write {inner!r} without ${{ }}"
        ]
    violations = check_expression(source, kind)
    if violations:
        return [f"{what} {_excerpt(shown or source)} is not allowed: " + "; ".join(violations)]
    tree = ast.parse(source.strip(), mode="eval") if kind == "expression" else ast.parse(source, mode="exec")
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in _NOT_PYTHON:
            problems.append(f"{what}: {node.id} is FEEL/JUEL; Python writes {_NOT_PYTHON[node.id]}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "due":
            problems.extend(f"{what}: {p}" for p in _due_problems(node, calendars))
    return problems


def calls_due(source: str) -> bool:
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "due"
        for node in ast.walk(tree)
    )


def timer_problems(kind: TimerKind, source: str | None, calendars: Collection[str]) -> list[str]:
    """Problems with a timer's timeDate / timeDuration / timeCycle expression."""
    if source is None or not source.strip():
        return [f'the timer has no {kind} value: give one, e.g. "PT30M" or {_DUE_EXAMPLE}']
    text = source.strip()
    if _BARE_ISO.match(text):
        return [
            f"{kind} {text} is not quoted: timer values are Python expressions, so it would be read as a "
            f'variable name (or not parse); write "{text}" with quotes'
        ]
    problems = code_problems(text, "expression", kind, calendars)
    if problems:
        return problems
    if kind != "timeDate" and calls_due(text):
        return [f'due() gives a date-time: use it in a Date timer (timeDate), not in {kind}; or write e.g. "PT30M"']
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ast.Constant):
        return _constant_timer_problems(kind, tree.value)
    return []


def _constant_timer_problems(kind: TimerKind, value: object) -> list[str]:
    if not isinstance(value, str):
        return [f'{kind} must give text such as "PT30M", not {value!r}']
    try:
        check_timer_value(value)
    except SandboxError as exc:
        return [f"{kind} {value!r}: {exc}"]
    if kind == "timeDuration":
        if not value.upper().startswith("P") or not _parses(TimerEventDefinition.parse_iso_duration, value):
            return [f'{kind} {value!r} is not an ISO 8601 duration such as "PT30M" or "P3D"']
    elif kind == "timeDate":
        if value.upper().startswith("P"):
            return [f'{kind} {value!r} is a duration: choose Timer type "Duration", or give a date-time']
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return [f'{kind} {value!r} is not an ISO 8601 date-time such as "2025-01-31T17:00:00+08:00"']
        if moment.tzinfo is None:
            return [f"{kind} {value!r} has no UTC offset (it would mean the server's time zone): add one, e.g. +08:00"]
    elif not value.upper().startswith("R") or not _parses(TimerEventDefinition.parse_iso_recurring_interval, value):
        return [f'{kind} {value!r} is not an ISO 8601 repeating interval such as "R3/PT1H"']
    return []


def _due_problems(call: ast.Call, calendars: Collection[str]) -> list[str]:
    if len(call.args) != 2 or call.keywords:
        return [f"due() takes a duration and a calendar name, e.g. {_DUE_EXAMPLE}"]
    problems = []
    duration, calendar = call.args
    if isinstance(duration, ast.Constant):
        value = duration.value
        valid = isinstance(value, str) and (
            value == END_OF_DAY
            or (value.upper().startswith("P") and _parses(TimerEventDefinition.parse_iso_duration, value))
        )
        if not valid:
            problems.append(f'due(): {value!r} is not a duration such as "PT30M", "PT8H", "P3D" or "EOD"')
        elif isinstance(value, str):
            try:
                check_timer_value(value)
            except SandboxError as exc:
                problems.append(f"due(): {exc}")
    if isinstance(calendar, ast.Constant):
        name = calendar.value
        if not isinstance(name, str):
            problems.append(f'due(): the calendar is a name in quotes, e.g. "cn-workdays", not {name!r}')
        elif name not in calendars:
            known = ", ".join(sorted(calendars)) or "none"
            problems.append(f"due(): no calendar {name!r}: add calendars/{name}.toml or use one of: {known}")
    return problems


def _parses(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except Exception:  # SpiffWorkflow raises bare Exception for malformed values
        return False
    return True


def _excerpt(source: str, limit: int = 80) -> str:
    text = " ".join(source.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
