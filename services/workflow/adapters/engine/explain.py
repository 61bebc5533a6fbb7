"""Explainable routing: which DMN rules decided.

SpiffWorkflow's DMN engine merges the winning rule's outputs into the task data and forgets which
rule it was. Ours does the same and also appends, to the process variable `matched_rules`, the
decision, the rule's id and description, and its outputs — shown on the instance
(GetProcessInstance.routing) and carried by `ticket.classified`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.specs.model import HitPolicy

MATCHED_RULES = "matched_rules"


class ExplainingDMNEngine(DMNEngine):  # type: ignore[misc]
    def __init__(self, decision_table: Any, decision_id: str) -> None:
        super().__init__(decision_table)
        self.decision_id = decision_id

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
