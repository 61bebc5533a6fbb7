"""The service's DMN engine (adapters/engine/explain.py) prepares each cell once and then decides
exactly as SpiffWorkflow's own engine does: the same rules match, the same values come out, and
a broken cell fails the same way on every check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine

from services.workflow.adapters.engine.explain import ExplainingDMNEngine
from services.workflow.adapters.sandbox import SandboxedScriptEngine
from tests.workflow.test_default_bundle import PARSER, _combinations

SCRIPT_ENGINE = SandboxedScriptEngine()


def task(**data: Any) -> Any:
    return SimpleNamespace(
        data=data, task_spec=SimpleNamespace(), workflow=SimpleNamespace(script_engine=SCRIPT_ENGINE)
    )


@pytest.mark.parametrize("decision", ["priority", "routing", "sla_targets"])
def test_every_catalogue_ticket_matches_the_same_rules_twice(decision: str) -> None:
    spiff = PARSER.get_engine(decision, None)
    ours = ExplainingDMNEngine(spiff.decision_table, decision)
    for problem_type, impact_scope, urgency, vip in _combinations():
        for priority in ("P0", "P1", "P2", "P3", "P9"):
            data = {"problem_type": problem_type, "impact_scope": impact_scope, "urgency": urgency, "vip": vip}
            data["priority"] = priority
            expected = [rule.id for rule in spiff.decide(task(**data))]
            assert [rule.id for rule in ours.decide(task(**data))] == expected  # prepared now
            assert [rule.id for rule in ours.decide(task(**data))] == expected  # and reused


CELLS = [
    ("urgency", '"high"'),  # plain value: joined with ==
    ("urgency", '? in ("high", "critical")'),  # `?` stands for the input
    ("count", ">= 3"),  # an operator: appended
    ("count", "1 < ? < 5"),
    ("label", '"why?"'),  # a `?` inside quotes is text
    ("count", "0 == False"),  # (count) == (0 == False), not count == 0 == False
    ("count", "[1..5]"),  # FEEL range: a syntax error
    ("count +", "3"),  # a broken input expression
    ("missing_variable", '"x"'),  # fails when evaluated
    ("count", None),  # an empty cell matches anything
]


@pytest.mark.parametrize(("input_expr", "cell"), CELLS)
@pytest.mark.parametrize("count", [0, 3, 7])
def test_a_cell_evaluates_or_fails_as_in_spiffworkflow_every_time(
    input_expr: str, cell: str | None, count: int
) -> None:
    data = {"urgency": "high", "count": count, "label": "why?"}
    spiff, ours = DMNEngine(None), ExplainingDMNEngine(None, "d")

    def outcome(engine: DMNEngine) -> Any:
        try:
            return engine.evaluate(input_expr, cell, task(**data))
        except Exception as error:  # what is raised is what is compared
            return type(error)

    expected = outcome(spiff)
    assert [outcome(ours), outcome(ours)] == [expected, expected]
