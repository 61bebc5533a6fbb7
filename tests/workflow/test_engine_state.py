"""The instance state the service writes and reads itself (adapters/engine/state.py) is exactly
SpiffWorkflow's own serialization minus the specs, and the runner's task walk is exactly the
engine's task order — checked after every step of every SOP path of the default bundle."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow

from services.workflow.adapters.engine import state
from services.workflow.adapters.engine.runner import _all_tasks
from tests.workflow import test_default_bundle as sop
from tests.workflow.test_default_bundle import SPEC, SUBPROCESS_SPECS, Clock, clock  # noqa: F401  (a fixture)

#: The SOP paths driven through `sop.Ticket` (each of its steps ends in `Ticket._step`).
SCENARIOS = [
    f
    for name, f in vars(sop).items()
    if name.startswith("test_")
    and list(inspect.signature(f).parameters) == ["clock"]
    and "Ticket.start(" in inspect.getsource(f)
]


def spiff_dump(workflow: BpmnWorkflow) -> bytes:
    """What SpiffWorkflow's serializer writes (through the spec-less converter)."""
    return str(state._SERIALIZER.serialize_json(workflow)).encode()


def spiff_load(saved: bytes) -> BpmnWorkflow:
    dct = json.loads(saved)
    dct.pop(state._SERIALIZER.VERSION_KEY)
    dct["spec"], dct["subprocess_specs"] = SPEC, dict(SUBPROCESS_SPECS)
    workflow: BpmnWorkflow = state._SERIALIZER.from_dict(dct)
    return workflow


def engine_order(workflow: BpmnWorkflow) -> list[Any]:
    """The walk the runner replaced: the engine's iterator, then subprocess tasks it did not reach."""
    seen = {t.id: t for t in workflow.get_tasks()}
    for sub in workflow.subprocesses.values():
        for task in sub.get_tasks():
            seen.setdefault(task.id, task)
    return list(seen)


def check(workflow: BpmnWorkflow) -> None:
    saved = state.dump(workflow)
    assert saved == spiff_dump(workflow)
    restored, reference = state.load(saved, SPEC, SUBPROCESS_SPECS), spiff_load(saved)
    assert spiff_dump(restored) == spiff_dump(reference) == saved
    assert list(restored.subprocesses) == list(reference.subprocesses)
    assert list(restored.event_manager.tasks) == list(reference.event_manager.tasks)
    for restored_task in restored.get_tasks():
        reference_task = reference.get_task_from_id(restored_task.id)
        assert restored_task.data == reference_task.data
        assert restored_task.parent is not None or reference_task.parent is None
    assert [t.id for t in _all_tasks(workflow)] == engine_order(workflow)
    assert [t.id for t in _all_tasks(restored)] == engine_order(restored)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f.__name__.removeprefix("test_") for f in SCENARIOS])
def test_state_and_task_order_match_spiffworkflow_at_every_step(
    scenario: Callable[[Clock], None],
    clock: Clock,  # noqa: F811  (test_default_bundle's fixture, imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = []
    engine_step = sop.Ticket._step

    def step_and_check(ticket: sop.Ticket) -> None:
        engine_step(ticket)
        check(ticket.workflow)
        steps.append(ticket)

    monkeypatch.setattr(sop.Ticket, "_step", step_and_check)
    scenario(clock)
    assert steps, "the scenario ran no step"
