"""Checks of a DMN file, as SpiffWorkflow 3.2.0 will run it.

SpiffWorkflow reads one decision per file and its first table. Cells are Python, evaluated like
this (``DMNEngine.evaluate``): an input entry holding ``?`` is evaluated with ``?`` bound to the
input's value (``1 < ? < 5``); an entry that parses as Python on its own is compared for equality
(``"P1"``); otherwise it is appended to the input expression (``>= 3``). FEEL that happens to be
Python therefore never matches: ``"a","b"`` compares with a tuple, ``not("a")`` with False.
A table where no rule matches sets nothing, so later conditions read stale or missing variables:
every table must end with a catch-all rule.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]

from services.workflow.adapters.engine.expressions import code_problems
from services.workflow.adapters.engine.problems import Findings

_QUESTION = re.compile(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)")  # SpiffWorkflow's: `?` outside quotes
_RANGE = re.compile(r"^([\[\]\(])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\]\)])$", re.S)
_NOT = re.compile(r"^not\s*\((.*)\)$", re.S)
_FIRST_MATCH_POLICIES: Final = frozenset({"UNIQUE", "FIRST"})
_OTHER_POLICIES: Final = frozenset({"PRIORITY", "ANY", "RULE ORDER", "OUTPUT ORDER"})
CALENDAR_OUTPUT: Final = "calendar"


def check_dmn(path: str, root: Any, calendars: Collection[str], findings: Findings) -> list[str]:
    """Check one DMN file; returns the ids of the decisions it defines."""
    ns = etree.QName(root).namespace
    decisions = root.findall(f"{{{ns}}}decision")
    if not decisions:
        findings.problem(path, "", "no <decision> in this file")
    elif len(decisions) > 1:
        ids = ", ".join(str(d.get("id")) for d in decisions)
        findings.problem(path, "", f"{len(decisions)} decisions ({ids}): put each decision in its own .dmn file")
    for decision in decisions:
        _check_decision(path, ns, decision, calendars, findings)
    return [str(d.get("id")) for d in decisions[:1]]


def _check_decision(path: str, ns: str, decision: Any, calendars: Collection[str], findings: Findings) -> None:
    decision_id = decision.get("id") or ""
    # Required inputs only document the table's inputs; a required decision would have to run first.
    if decision.find(f"{{{ns}}}informationRequirement/{{{ns}}}requiredDecision") is not None:
        findings.problem(
            path,
            decision_id,
            "decision requirements are not evaluated: call each decision from its own business rule task, in order",
        )
    tables = decision.findall(f"{{{ns}}}decisionTable")
    if len(tables) != 1:
        what = "no decision table (literal expressions are not supported)" if not tables else "several tables"
        findings.problem(path, decision_id, f"{what}: give the decision exactly one decision table")
        return
    table = tables[0]
    policy = (table.get("hitPolicy") or "UNIQUE").upper()
    if table.get("aggregation"):
        findings.problem(
            path,
            decision_id,
            f"aggregation {table.get('aggregation')} is ignored (COLLECT gives lists): "
            "remove it and compute the total in a script task",
        )
    if policy in _OTHER_POLICIES:
        findings.warning(path, decision_id, f"hit policy {policy} behaves as FIRST here: the first matching rule wins")
    inputs = table.findall(f"{{{ns}}}input")
    outputs = table.findall(f"{{{ns}}}output")
    input_texts = [_input_expression(path, ns, i, calendars, findings) for i in inputs]
    output_names = []
    for output in outputs:
        name = output.get("name") or output.get("label") or ""
        if not name:
            findings.problem(path, output.get("id"), "output has no name: name the variable it sets")
        output_names.append(name)
    rules = table.findall(f"{{{ns}}}rule")
    for number, rule in enumerate(rules, start=1):
        entries = rule.findall(f"{{{ns}}}inputEntry")
        results = rule.findall(f"{{{ns}}}outputEntry")
        rule_id = rule.get("id") or decision_id
        if len(entries) != len(inputs) or len(results) != len(outputs):
            findings.problem(
                path,
                rule_id,
                f"rule {number} has {len(entries)} input and {len(results)} output cells; "
                f"the table has {len(inputs)} inputs and {len(outputs)} outputs",
            )
            continue
        for entry, input_element, input_text in zip(entries, inputs, input_texts, strict=True):
            where = f'rule {number}, input "{_label(input_element)}"'
            for message in input_entry_problems(_text(ns, entry), input_text, where, calendars):
                findings.problem(path, rule_id, message)
        for result, name in zip(results, output_names, strict=True):
            _check_output_entry(
                path, rule_id, f'rule {number}, output "{name}"', name, _text(ns, result), calendars, findings
            )
    if policy != "COLLECT":
        _check_catch_all(path, ns, decision_id, rules, findings)


def _input_expression(path: str, ns: str, element: Any, calendars: Collection[str], findings: Findings) -> str:
    expression = element.find(f"{{{ns}}}inputExpression")
    text = _text(ns, expression) if expression is not None else ""
    if not text.strip():
        findings.problem(
            path, element.get("id"), f'input "{_label(element)}" has no expression: give the variable it reads'
        )
        return ""
    for message in code_problems(text, "expression", f'input "{_label(element)}" expression', calendars):
        findings.problem(path, element.get("id"), message)
    return text.strip()


def input_entry_problems(cell: str, input_text: str, where: str, calendars: Collection[str]) -> list[str]:
    """Problems with one input cell, evaluated as DMNEngine would against ``input_text``."""
    text = cell.strip()
    if text in ("", "-"):
        return []
    feel = feel_fix(text)
    if feel:
        return [f"{where}: {text!r} is FEEL, which is not supported (cells are Python): write {feel}"]
    if _QUESTION.search(text):
        effective = _QUESTION.sub("dmninputexpr", text)
    elif _parses(text):
        effective = f"({input_text or 'None'}) == ({text})"
    elif _parses(f"v {text}"):
        effective = f"{input_text or 'None'} {text}"
    else:
        return [f'{where}: {text!r} is neither a value ("P1") nor a test (">= 3", "? in (\\"a\\", \\"b\\")")']
    return code_problems(effective, "expression", f"{where} cell", calendars, shown=text)


def feel_fix(text: str) -> str | None:
    """The Python for a FEEL unary test, or None if ``text`` is not recognisably FEEL."""
    found = _RANGE.match(text)
    if found:
        opening, low, high, closing = found.groups()
        return f"{low} {'<=' if opening == '[' else '<'} ? {'<=' if closing == ']' else '<'} {high}"
    found = _NOT.match(text) if "?" not in text else None
    if found:
        inner = found.group(1).strip()
        return f"? not in ({inner})" if _is_tuple(inner) else f"? != {inner}"
    if "?" not in text and _is_tuple(text):
        inner = text[1:-1] if text.startswith("(") and text.endswith(")") else text
        return f"? in ({inner})"
    return None


def _check_output_entry(
    path: str, rule_id: str, where: str, name: str, text: str, calendars: Collection[str], findings: Findings
) -> None:
    if not text.strip():
        findings.warning(
            path, rule_id, f'{where} is empty, which sets "{name}" to "" (empty text); write None for no value'
        )
        return
    for message in code_problems(text, "expression", where, calendars):
        findings.problem(path, rule_id, message)
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return
    if name == CALENDAR_OUTPUT and isinstance(value, str) and value not in calendars:
        known = ", ".join(sorted(calendars)) or "none"
        findings.problem(
            path, rule_id, f"{where}: no calendar {value!r}: add calendars/{value}.toml or use one of: {known}"
        )


def _check_catch_all(path: str, ns: str, decision_id: str, rules: list[Any], findings: Findings) -> None:
    fix = 'add a last rule with "-" in every input column'
    if not rules:
        findings.problem(path, decision_id, f"the decision table has no rules: {fix}")
        return
    last = rules[-1]
    if any(_text(ns, entry).strip() not in ("", "-") for entry in last.findall(f"{{{ns}}}inputEntry")):
        findings.problem(
            path,
            decision_id,
            "the last rule is not a catch-all: when no rule matches, the table sets nothing "
            f"and later steps see missing values; {fix}",
        )


def _text(ns: str, element: Any) -> str:
    text = element.find(f"{{{ns}}}text")
    return "" if text is None or text.text is None else str(text.text)


def _label(element: Any) -> str:
    return str(element.get("label") or element.get("name") or element.get("id") or "?")


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _is_tuple(text: str) -> bool:
    try:
        return isinstance(ast.parse(text, mode="eval").body, ast.Tuple)
    except SyntaxError:
        return False
