"""Explainable routing: which DMN rules decided.

SpiffWorkflow's DMN engine merges the winning rule's outputs into the task data and forgets which
rule it was. Ours does the same and also appends, to the process variable `matched_rules`, the
decision, the rule's id and description, and its outputs — shown on the instance
(GetProcessInstance.routing) and carried by `ticket.classified`.

It also prepares each cell once. For every cell of every rule it checks, SpiffWorkflow's engine
rewrites the cell's `?` with a regular expression and parses the input expression and the cell
(one or two `ast.parse`) to decide how to join them — the same text each time, about 40 parses
to classify one ticket, a tenth of the engine's work on a start. Ours keeps what those steps
decided per (input expression, cell) and evaluates the joined expression in the script engine,
the sandbox, on every check as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.specs.model import HitPolicy

MATCHED_RULES = "matched_rules"


#: SpiffWorkflow's `?` outside quotes (DMNEngine.evaluate), which stands for the input's value.
_INPUT_MARK = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')
_INPUT_NAME = "dmninputexpr"


class ExplainingDMNEngine(DMNEngine):  # type: ignore[misc]
    def __init__(self, decision_table: Any, decision_id: str) -> None:
        super().__init__(decision_table)
        self.decision_id = decision_id
        #: (input expression, cell) -> (the cell uses `?`, the expression to evaluate)
        self._cells: dict[tuple[str, str], tuple[bool, str]] = {}

    def evaluate(self, input_expr: str, match_expr: str | None, task: Any) -> Any:
        """DMNEngine.evaluate, with the cell's rewriting and syntax checks done once per cell."""
        if match_expr is None:
            return True
        script_engine = task.workflow.script_engine
        cell = self._cells.get((input_expr, match_expr))
        if cell is None:
            cell = self._cells[(input_expr, match_expr)] = self._prepare(script_engine, input_expr, match_expr)
        uses_input, expression = cell
        if uses_input:
            value = script_engine.evaluate(task, input_expr)
            return script_engine.evaluate(task, expression, external_context={_INPUT_NAME: value})
        return script_engine.evaluate(task, expression)

    def _prepare(self, script_engine: Any, input_expr: str, match_expr: str) -> tuple[bool, str]:
        """What DMNEngine.evaluate derives from the texts alone; a SyntaxError is raised, not kept,
        so a broken cell fails on every check as it does there."""
        match_expr = _INPUT_MARK.sub(_INPUT_NAME, match_expr)
        if _INPUT_NAME in match_expr:
            return True, match_expr
        script_engine.validate(input_expr)
        if self.needs_eq(script_engine, match_expr):
            return False, f"({input_expr}) == ({match_expr})"  # `a == 0 == True` stays unambiguous
        return False, input_expr + match_expr

    def result(self, task: Any) -> dict[str, Any]:
        matched = self.decide(task)
        if self.decision_table.hit_policy != HitPolicy.COLLECT.value:
            matched = matched[:1]  # FIRST / UNIQUE: the first match decides
        result: dict[str, Any] = {}
        # A decision taken again (rework, reclassification) replaces its earlier explanation.
        explained = [e for e in task.data.get(MATCHED_RULES) or [] if e.get("decision_id") != self.decision_id]
        for rule in matched:
            outputs = dict(rule.output_as_dict(task))
            if self.decision_table.hit_policy == HitPolicy.COLLECT.value:
                for key, value in outputs.items():
                    result.setdefault(key, []).append(value)
            else:
                result = outputs
            explained.append(
                {
                    "decision_id": self.decision_id,
                    "rule_id": rule.id,
                    "description": rule.description or "",
                    "outputs": {k: v for k, v in outputs.items() if isinstance(v, (str, int, float, bool))},
                }
            )
        result[MATCHED_RULES] = explained
        return result


def explain_business_rules(specs: Iterable[Any]) -> None:
    """Give every business rule task of these process specs an explaining engine."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            engine = getattr(task_spec, "dmnEngine", None)
            if engine is not None and not isinstance(engine, ExplainingDMNEngine):
                task_spec.dmnEngine = ExplainingDMNEngine(engine.decision_table, _decision_ref(task_spec))


def _decision_ref(task_spec: Any) -> str:
    """The parser records camunda:decisionRef among the task's extensions (parser.py)."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return str(extensions.get("decisionRef") or getattr(task_spec, "bpmn_id", "") or "")
