"""SupportParser: SpiffWorkflow's CamundaParser, plus what supportflow's diagrams carry.

CamundaParser puts ``camunda:properties`` into ``task_spec.extensions`` only for some tasks (user,
manual, business rule, plain tasks, call activities and subprocesses), and reads them with
``.//``, so an embedded subprocess also collects every property of the elements inside it. Events,
gateways and script tasks get ``{}``. The SLA conventions (bpmn/README.md) put ``sla.*`` properties
on any flow node, so every parser here reads the element's own properties
(``./bpmn:extensionElements/camunda:properties/camunda:property``).

User tasks also get their Camunda attributes ``candidateGroups``, ``candidateUsers``, ``assignee``
and ``dueDate`` as extension keys of the same names (raw attribute text; an attribute wins over a
property of the same name). CamundaParser reads none of them.

A multi-instance or loop task becomes two specs: the wrapper (named by the element id) and the
inner task (``"<id> [child]"``), which is the user task people complete. Both carry the element's
extensions, so ``extensions`` is set on every spec parsed from a diagram element.

Extensions are plain dicts of strings; BpmnWorkflowSerializer keeps them, but the service re-parses
the deployment's files and caches the specs instead of serializing them.
"""

from __future__ import annotations

from typing import Any, Final

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import EventBasedGatewayParser
from SpiffWorkflow.bpmn.parser.task_parsers import ConditionalGatewayParser, GatewayParser
from SpiffWorkflow.bpmn.specs.defaults import (
    BoundaryEvent,
    CallActivity,
    EndEvent,
    EventBasedGateway,
    ExclusiveGateway,
    InclusiveGateway,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    ManualTask,
    NoneTask,
    ParallelGateway,
    ScriptTask,
    StartEvent,
    TransactionSubprocess,
)
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import (
    CAMUNDA_MODEL_NS,
    BusinessRuleTaskParser,
    CallActivityParser,
    CamundaTaskParser,
    ScriptTaskParser,
    SubWorkflowParser,
    UserTaskParser,
)
from SpiffWorkflow.camunda.specs.business_rule_task import BusinessRuleTask
from SpiffWorkflow.camunda.specs.user_task import UserTask

#: Camunda attributes of a user task copied into its extensions.
USER_TASK_ATTRIBUTES: Final = ("candidateGroups", "candidateUsers", "assignee", "dueDate")
PROPERTIES_XPATH: Final = "./bpmn:extensionElements/camunda:properties/camunda:property"


def element_properties(node: Any, nsmap: dict[str, str]) -> dict[str, str]:
    """The ``camunda:property`` entries directly on ``node`` (not on elements nested inside it)."""
    properties: dict[str, str] = {}
    for prop in node.xpath(PROPERTIES_XPATH, namespaces=nsmap):
        name = prop.get("name")
        if name:
            properties[name] = prop.get("value") or ""
    return properties


class _OwnProperties:
    """Mixin for a SpiffWorkflow task parser: extensions are the element's own properties."""

    node: Any
    nsmap: dict[str, str]
    task: Any

    def parse_extensions(self, node: Any = None) -> dict[str, str]:
        return element_properties(self.node if node is None else node, self.nsmap)

    def _copy_task_attrs(self, original: Any, loop_characteristics: Any = None) -> None:
        super()._copy_task_attrs(original, loop_characteristics)  # type: ignore[misc]
        self.task.extensions = dict(getattr(original, "extensions", {}))


class SupportUserTaskParser(_OwnProperties, UserTaskParser):  # type: ignore[misc]
    def parse_extensions(self, node: Any = None) -> dict[str, str]:
        node = self.node if node is None else node
        extensions = super().parse_extensions(node)
        for name in USER_TASK_ATTRIBUTES:
            value = node.get(f"{{{CAMUNDA_MODEL_NS}}}{name}")
            if value is not None:
                extensions[name] = value
        return extensions


# One class per SpiffWorkflow parser: its parser "design" leaves no other extension point.
class _TaskParser(_OwnProperties, CamundaTaskParser):  # type: ignore[misc]
    pass


class _BusinessRuleTaskParser(_OwnProperties, BusinessRuleTaskParser):  # type: ignore[misc]
    def parse_extensions(self, node: Any = None) -> dict[str, str]:
        # Which decision decided: recorded with the matched rules (explain.py).
        extensions = super().parse_extensions(node)
        decision = self.node.get(f"{{{CAMUNDA_MODEL_NS}}}decisionRef")
        if decision:
            extensions["decisionRef"] = decision
        return extensions


class _ScriptTaskParser(_OwnProperties, ScriptTaskParser):  # type: ignore[misc]
    pass


class _SubWorkflowParser(_OwnProperties, SubWorkflowParser):  # type: ignore[misc]
    pass


class _CallActivityParser(_OwnProperties, CallActivityParser):  # type: ignore[misc]
    pass


class _StartEventParser(_OwnProperties, CamundaStartEventParser):  # type: ignore[misc]
    pass


class _EndEventParser(_OwnProperties, CamundaEndEventParser):  # type: ignore[misc]
    pass


class _IntermediateCatchEventParser(_OwnProperties, CamundaIntermediateCatchEventParser):  # type: ignore[misc]
    pass


class _IntermediateThrowEventParser(_OwnProperties, CamundaIntermediateThrowEventParser):  # type: ignore[misc]
    pass


class _BoundaryEventParser(_OwnProperties, CamundaBoundaryEventParser):  # type: ignore[misc]
    pass


class _GatewayParser(_OwnProperties, GatewayParser):  # type: ignore[misc]
    pass


class _ConditionalGatewayParser(_OwnProperties, ConditionalGatewayParser):  # type: ignore[misc]
    pass


class _EventBasedGatewayParser(_OwnProperties, EventBasedGatewayParser):  # type: ignore[misc]
    pass


class SupportParser(CamundaParser):  # type: ignore[misc]
    """Parses a bundle's BPMN and DMN; give it trees from ``xml_safety.parse_xml``, never files."""

    OVERRIDE_PARSER_CLASSES: Final = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (SupportUserTaskParser, UserTask),
        full_tag("task"): (_TaskParser, NoneTask),
        full_tag("manualTask"): (_TaskParser, ManualTask),
        full_tag("businessRuleTask"): (_BusinessRuleTaskParser, BusinessRuleTask),
        full_tag("scriptTask"): (_ScriptTaskParser, ScriptTask),
        full_tag("subProcess"): (_SubWorkflowParser, CallActivity),
        full_tag("transaction"): (_SubWorkflowParser, TransactionSubprocess),
        full_tag("callActivity"): (_CallActivityParser, CallActivity),
        full_tag("startEvent"): (_StartEventParser, StartEvent),
        full_tag("endEvent"): (_EndEventParser, EndEvent),
        full_tag("intermediateCatchEvent"): (_IntermediateCatchEventParser, IntermediateCatchEvent),
        full_tag("intermediateThrowEvent"): (_IntermediateThrowEventParser, IntermediateThrowEvent),
        full_tag("boundaryEvent"): (_BoundaryEventParser, BoundaryEvent),
        full_tag("exclusiveGateway"): (_ConditionalGatewayParser, ExclusiveGateway),
        full_tag("inclusiveGateway"): (_ConditionalGatewayParser, InclusiveGateway),
        full_tag("parallelGateway"): (_GatewayParser, ParallelGateway),
        full_tag("eventBasedGateway"): (_EventBasedGatewayParser, EventBasedGateway),
    }
