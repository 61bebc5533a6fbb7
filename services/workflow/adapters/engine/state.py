"""An instance's state without its process definition.

SpiffWorkflow's serializer embeds the whole parsed process (and every subprocess) in each instance
it saves; for our default process that is most of the bytes and most of the restore time
(ENGINE-NOTES). Every instance here belongs to a deployment whose files we keep and whose parsed
specs we cache, so the state leaves the specs out and `load` takes them from the deployment.

The layout is SpiffWorkflow 3.2's own (serializer format 1.5 minus `spec`/`subprocess_specs`),
written and read by `_SpeclessWorkflowConverter` through the serializer's registry. The service
saves and restores an instance on every step, and the registry's generic walk (a dispatch per
task, per value and per id) cost about as much as the engine's own work on a start. So `dump` and
`load` do the per-task part — the bulk of it — directly, producing and accepting exactly the same
JSON (tests/workflow/test_engine_state.py compares both ways); the registry still converts
everything that is not a plain task (workflow data, internal data, events, typed values in data).

Before saving, thrown events must have been taken with `get_events()` (the runner always does):
they are transient and their definitions are not part of what we restore.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

#: Bumped when the stored layout changes; stored instances of another version need a migration.
STATE_VERSION = "supportflow-1"


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """The default converter minus the specs: `to_dict` drops them, `from_dict` finds the live spec
    objects where `load` put them (under the same keys). The reference for `dump` and `load`."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        spec, subprocess_specs = dct.pop("spec"), dct.pop("subprocess_specs")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _uuid(value: str) -> UUID:
    return UUID(value)


def _serializer() -> BpmnWorkflowSerializer:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config, DefaultRegistry()), version=STATE_VERSION)


_SERIALIZER = _serializer()
_REGISTRY: DefaultRegistry = _SERIALIZER.registry
_TASK = _REGISTRY.typenames[Task]
_SUBWORKFLOW = _REGISTRY.typenames[BpmnSubWorkflow]
_WORKFLOW = _REGISTRY.typenames[BpmnWorkflow]
_MUTABLE = (dict, list, set)


def _workflow_converter() -> _SpeclessWorkflowConverter:
    """The converter instance `configure` registered (its `set_default_attributes` is reused)."""
    to_dict = _REGISTRY.convert_to_dict[_WORKFLOW].args[1]
    converter = getattr(to_dict, "__self__", None)
    assert isinstance(converter, _SpeclessWorkflowConverter)
    return converter


_CONVERTER = _workflow_converter()


# -- saving ------------------------------------------------------------------------------------


def dump(workflow: BpmnWorkflow) -> bytes:
    """The instance's state as JSON (no specs)."""
    if not _plain_classes(workflow):
        return str(_SERIALIZER.serialize_json(workflow)).encode()
    _REGISTRY._encoder_mode = True  # as serialize_json does: typed values are left to the JSON encoder
    try:
        dct = _workflow_dict(workflow)
        dct["subprocesses"] = {str(key): _subworkflow_dict(sub) for key, sub in workflow.subprocesses.items()}
        dct["bpmn_events"] = _REGISTRY.convert(workflow.bpmn_events)
        dct["typename"] = _WORKFLOW
        dct[_SERIALIZER.VERSION_KEY] = STATE_VERSION
        return json.dumps(dct, cls=_SERIALIZER._encoder_cls).encode()
    finally:
        _REGISTRY._encoder_mode = False


def _plain_classes(workflow: BpmnWorkflow) -> bool:
    """The classes `dump` and `load` write and read themselves (anything else takes the registry)."""
    return (
        type(workflow) is BpmnWorkflow
        and all(
            type(sub) is BpmnSubWorkflow and all(type(t) is Task for t in sub.tasks.values())
            for sub in workflow.subprocesses.values()
        )
        and all(type(t) is Task for t in workflow.tasks.values())
    )


def _workflow_dict(workflow: Any) -> dict[str, Any]:
    """WorkflowConverter.to_dict, with the tasks done here."""
    last = workflow.last_task
    return {
        "data": _REGISTRY.convert(_REGISTRY.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(last.id) if last is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": _tasks_dict(workflow.tasks),
        "root": str(workflow.task_tree.id),
    }


def _subworkflow_dict(sub: BpmnSubWorkflow) -> dict[str, Any]:
    dct = _workflow_dict(sub)
    dct["parent_task_id"] = str(sub.parent_task_id)
    dct["spec"] = sub.spec.name
    dct["typename"] = _SUBWORKFLOW
    return dct


def _tasks_dict(tasks: Mapping[UUID, Task]) -> dict[str, Any]:
    """TaskConverter.to_dict for every task (each id turned into text once, not at every mention)."""
    names = {key: str(key) for key in tasks}
    convert = _REGISTRY.convert
    out: dict[str, Any] = {}
    for key, task in tasks.items():
        parent = tasks.get(task._parent) if task._parent is not None else None
        if parent is None:
            data, delta = task.data, {}
        else:  # only what differs from the parent's data (DeepMerge.get_updated_keys/get_deleted_keys)
            own, inherited = task.data, parent.data
            data = {}
            delta = {
                "updates": {k: v for k, v in own.items() if k not in inherited or v != inherited[k]},
                "deletions": [k for k in inherited if k not in own],
            }
        out[names[key]] = {
            "id": names.get(task.id) or str(task.id),
            "parent": (names.get(task._parent) or str(task._parent)) if parent is not None else None,
            "children": [names.get(child) or str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task._state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": convert(task.internal_data) if task.internal_data else {},
            "data": data,
            "delta": delta,
            "typename": _TASK,
        }
    return out


# -- restoring ---------------------------------------------------------------------------------


def load(state: bytes, spec: BpmnProcessSpec, subprocess_specs: Mapping[str, BpmnProcessSpec]) -> BpmnWorkflow:
    """Restore an instance saved by `dump` onto its deployment's parsed specs.

    The script engine is not part of the state: set it on the returned workflow before running it.
    """
    dct = json.loads(state)
    version = dct.pop(_SERIALIZER.VERSION_KEY, None)
    if version != STATE_VERSION:
        raise ValueError(f"instance state version {version!r} is not {STATE_VERSION!r}")
    if dct.get("typename") != _WORKFLOW or not _plain_layout(dct):
        dct["spec"], dct["subprocess_specs"] = spec, dict(subprocess_specs)
        workflow: BpmnWorkflow = _SERIALIZER.from_dict(dct)
        return workflow
    ids: dict[str, UUID] = {}
    workflow = BpmnWorkflow(spec, dict(subprocess_specs), deserializing=True)
    _restore_tasks(workflow, dct["tasks"], ids)
    workflow.task_tree = workflow.tasks.get(_id(ids, dct["root"]))
    _CONVERTER.set_default_attributes(workflow, dct)
    _restore_subprocesses(dct["subprocesses"], workflow, workflow, ids)
    workflow.bpmn_events = _REGISTRY.restore(dct.pop("bpmn_events", []))
    return workflow


def _plain_layout(dct: Mapping[str, Any]) -> bool:
    """What `dump` writes: plain tasks, each under its own id, in plain subprocesses."""

    def plain_tasks(tasks: Mapping[str, Any]) -> bool:
        return all(t.get("typename") == _TASK and t.get("id") == key for key, t in tasks.items())

    return plain_tasks(dct["tasks"]) and all(
        s.get("typename") == _SUBWORKFLOW and plain_tasks(s["tasks"]) for s in dct["subprocesses"].values()
    )


def _id(ids: dict[str, UUID], text: str) -> UUID:
    """One UUID per id text within a restore (each id is mentioned three or four times)."""
    found = ids.get(text)
    if found is None:
        found = ids[text] = UUID(text)
    return found


def _restore_tasks(workflow: Any, tasks: Mapping[str, Any], ids: dict[str, UUID]) -> None:
    """TaskConverter.from_dict for every task, in saved order (a parent before its children)."""
    workflow.tasks = {}
    specs = workflow.spec.task_specs
    restore = _REGISTRY.restore
    events = workflow.top_workflow.event_manager
    for dct in tasks.values():
        task_spec = specs.get(dct["task_spec"])
        task = Task(workflow, task_spec, state=dct["state"], id=_id(ids, dct["id"]))
        parent_id = dct["parent"]
        task._parent = _id(ids, parent_id) if parent_id is not None else None
        task._children = [_id(ids, child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        internal = dct["internal_data"]
        task.internal_data = restore(internal) if internal else {}
        if isinstance(task_spec, CatchingEvent) and task._state & TaskState.WAITING:
            events.add_task(task)
        delta = dct.get("delta")
        parent = workflow.tasks.get(task._parent) if task._parent is not None else None
        if delta and parent is not None:
            # DeepMerge.merge({}, parent.data): the parent's data with its containers copied one level.
            data = {k: copy.copy(v) if isinstance(v, _MUTABLE) else v for k, v in parent.data.items()}
            data.update(restore(delta.get("updates", {})))
            for name in delta.get("deletions", {}):
                data.pop(name, None)
        else:
            data = restore(dct["data"])
        task.data = data


def _restore_subprocesses(dct: dict[str, Any], workflow: Any, top: BpmnWorkflow, ids: dict[str, UUID]) -> None:
    """subprocesses_from_dict: parents are restored before the subprocesses their tasks run."""
    for task in list(workflow.tasks.values()):
        if not isinstance(task.task_spec, SubWorkflowTask) or (saved := dct.pop(str(task.id), None)) is None:
            continue
        sub = BpmnSubWorkflow(top.subprocess_specs.get(task.task_spec.spec), task.id, top, deserializing=True)
        _restore_tasks(sub, saved["tasks"], ids)
        sub.task_tree = sub.tasks.get(_id(ids, saved["root"]))
        _CONVERTER.set_default_attributes(sub, saved)
        top.subprocesses[task.id] = sub
        sub.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
        _restore_subprocesses(dct, sub, top, ids)
