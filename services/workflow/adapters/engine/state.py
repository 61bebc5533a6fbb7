"""An instance's state without its process definition.

SpiffWorkflow's serializer embeds the whole parsed process (and every subprocess) in each instance
it saves; for our default process that is most of the bytes and most of the restore time
(ENGINE-NOTES). Every instance here belongs to a deployment whose files we keep and whose parsed
specs we cache, so the state leaves the specs out and `load` takes them from the deployment.

Before saving, thrown events must have been taken with `get_events()` (the runner always does):
they are transient and their definitions are not part of what we restore.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

#: Bumped when the stored layout changes; stored instances of another version need a migration.
STATE_VERSION = "supportflow-1"


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """The default converter minus the specs: `to_dict` drops them, `from_dict` finds the live spec
    objects where `load` put them (under the same keys)."""

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


def dump(workflow: BpmnWorkflow) -> bytes:
    """The instance's state as JSON (no specs)."""
    return str(_SERIALIZER.serialize_json(workflow)).encode()


def load(state: bytes, spec: BpmnProcessSpec, subprocess_specs: Mapping[str, BpmnProcessSpec]) -> BpmnWorkflow:
    """Restore an instance saved by `dump` onto its deployment's parsed specs.

    The script engine is not part of the state: set it on the returned workflow before running it.
    """
    dct = json.loads(state)
    version = dct.pop(_SERIALIZER.VERSION_KEY, None)
    if version != STATE_VERSION:
        raise ValueError(f"instance state version {version!r} is not {STATE_VERSION!r}")
    dct["spec"], dct["subprocess_specs"] = spec, dict(subprocess_specs)
    workflow: BpmnWorkflow = _SERIALIZER.from_dict(dct)
    return workflow
