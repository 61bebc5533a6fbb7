"""Checks of a BPMN file against what SpiffWorkflow 3.2.0 under CamundaParser actually runs, and
against the bundle (called processes, decisions, calendars, SLA clocks).

They walk the XML, not the parsed specs: SpiffWorkflow only parses what a start event reaches,
and silently drops what it does not understand (listeners, mappings, conditions on flows that
leave a task). Every element is looked at, reachable or not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]

from services.workflow.adapters.engine import conventions as conv
from services.workflow.adapters.engine.expressions import code_problems, timer_problems
from services.workflow.adapters.engine.index import THROW_EVENTS, BundleIndex, local_name
from services.workflow.adapters.engine.problems import Findings
from services.workflow.adapters.engine.xml_safety import BPMN_NS, CAMUNDA_NS

_B: Final = f"{{{BPMN_NS}}}"
_C: Final = f"{{{CAMUNDA_NS}}}"
TIMER_KINDS: Final = ("timeDate", "timeDuration", "timeCycle")
_CONDITIONAL_SOURCES: Final = ("exclusiveGateway", "inclusiveGateway")
_ELEMENT_PARTS: Final = frozenset(
    {"conditionExpression", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics", "script"}
    | {"loopCardinality", "completionCondition", "loopCondition", *TIMER_KINDS}
)
_PYTHON: Final = ("", "python", "py", "python3")
_SEND_RECEIVE: Final = (
    "carries a plain BPMN message that the service's messages never match: use a message intermediate {} event"
)
UNSUPPORTED: Final = {
    "serviceTask": "service tasks never complete in this engine (they wait forever): use a script task to "
    "compute, or a message throw event to notify another service",
    "sendTask": "a send task " + _SEND_RECEIVE.format("throw"),
    "receiveTask": "a receive task " + _SEND_RECEIVE.format("catch"),
    "complexGateway": "complex gateways are not supported: use exclusive, inclusive or parallel gateways",
    "adHocSubProcess": "ad-hoc subprocesses are not supported: model the steps with gateways",
    "linkEventDefinition": "link events are not supported: draw a sequence flow instead (loop back through an "
    "exclusive gateway)",
    "compensateEventDefinition": "compensation is not supported: model the undo steps as ordinary tasks (e.g. "
    "after an error boundary event)",
    "conditionalEventDefinition": "conditional events do not fire in this engine: use an exclusive gateway on "
    "the data, or a message the service sends",
}
CAMUNDA_IGNORED: Final = {
    "executionListener": "listeners are not run by this engine: use a script task",
    "taskListener": "listeners are not run by this engine: use a script task",
    "inputOutput": "input/output mappings are not applied by this engine: set variables in a script task",
}


def check_bpmn(path: str, root: Any, index: BundleIndex, findings: Findings) -> None:
    _BpmnFile(path, root, index, findings).check()


def _is_diagram_element(element: Any) -> bool:
    if etree.QName(element).namespace != BPMN_NS or not element.get("id"):
        return False
    name = local_name(element)
    return not (name.endswith("EventDefinition") or name in _ELEMENT_PARTS)


class _BpmnFile:
    def __init__(self, path: str, root: Any, index: BundleIndex, findings: Findings) -> None:
        self.path, self.root, self.index, self.findings = path, root, index, findings
        self.ids = {el.get("id"): el for el in root.iter(f"{_B}*") if el.get("id")}
        self.flows_from: dict[str, list[Any]] = defaultdict(list)
        for flow in root.iter(f"{_B}sequenceFlow"):
            self.flows_from[flow.get("sourceRef") or ""].append(flow)
        self.messages = {m.get("id"): m.get("name") or "" for m in root.iter(f"{_B}message")}
        self.bpmn_handlers: dict[str, Callable[[Any], None]] = {
            "sequenceFlow": self._sequence_flow,
            "exclusiveGateway": self._conditional_gateway,
            "inclusiveGateway": self._conditional_gateway,
            "eventBasedGateway": self._event_based_gateway,
            "subProcess": self._sub_process,
            "standardLoopCharacteristics": self._standard_loop,
            "multiInstanceLoopCharacteristics": self._multi_instance_loop,
            "scriptTask": self._script_task,
            "businessRuleTask": self._business_rule_task,
            "callActivity": self._call_activity,
            "userTask": self._user_task,
            "timerEventDefinition": self._timer,
            "messageEventDefinition": self._message,
            "correlationPropertyRetrievalExpression": self._correlation,
        }
        self.camunda_handlers: dict[str, Callable[[Any], None]] = {
            "property": self._property,
            "formField": self._form_field,
            "in": self._variable_mapping,
            "out": self._variable_mapping,
        }

    def check(self) -> None:
        for element in self.root.iter():
            if not isinstance(element.tag, str):
                continue  # comments, processing instructions
            namespace, name = etree.QName(element).namespace, local_name(element)
            if namespace == BPMN_NS:
                if name in UNSUPPORTED:
                    self.problem(element, UNSUPPORTED[name])
                if name in self.bpmn_handlers:
                    self.bpmn_handlers[name](element)
                if element.get("isForCompensation") == "true":
                    self.problem(element, UNSUPPORTED["compensateEventDefinition"])
            elif namespace == CAMUNDA_NS:
                if name in CAMUNDA_IGNORED:
                    self.problem(element, CAMUNDA_IGNORED[name])
                if name in self.camunda_handlers:
                    self.camunda_handlers[name](element)

    # -- reporting ---------------------------------------------------------------------------

    def owner(self, element: Any) -> str:
        """The id of the diagram element ``element`` belongs to (itself, or an ancestor): the event,
        not its event definition, which Modeler also gives an id but never shows."""
        while element is not None and not _is_diagram_element(element):
            element = element.getparent()
        return "" if element is None else str(element.get("id"))

    def problem(self, element: Any, message: str) -> None:
        self.findings.problem(self.path, self.owner(element), message)

    def warning(self, element: Any, message: str) -> None:
        self.findings.warning(self.path, self.owner(element), message)

    def code(self, element: Any, source: str | None, kind: Any, what: str) -> None:
        for message in code_problems(source, kind, what, self.index.calendars):
            self.problem(element, message)

    # -- flow ---------------------------------------------------------------------------------

    def _sequence_flow(self, flow: Any) -> None:
        condition = flow.find(f"{_B}conditionExpression")
        if condition is None:
            return
        source = self.ids.get(flow.get("sourceRef"))
        kind = local_name(source) if source is not None else "?"
        if kind not in _CONDITIONAL_SOURCES:
            self.problem(
                flow,
                f"a condition on a flow leaving a {kind} is ignored by the engine: put an exclusive gateway "
                "after it and move the condition to the gateway's outgoing flow",
            )
        elif source is not None and source.get("default") == flow.get("id"):
            self.warning(flow, "the condition on a gateway's default flow is ignored")
        language = (condition.get("language") or "").strip().lower()
        if language not in _PYTHON or condition.get(f"{_C}resource"):
            self.problem(flow, f"condition language {language!r}: conditions are Python expressions, written inline")
            return
        self.code(flow, condition.text, "expression", "condition")

    def _conditional_gateway(self, gateway: Any) -> None:
        flows = self.flows_from.get(gateway.get("id"), [])
        if len(flows) < 2:
            return
        for flow in flows:
            if flow.get("id") != gateway.get("default") and flow.find(f"{_B}conditionExpression") is None:
                self.problem(
                    flow,
                    "this flow leaves a gateway without a condition and is not its default flow: "
                    "add a condition, or mark it as the default flow",
                )

    def _event_based_gateway(self, gateway: Any) -> None:
        targets = [self.ids.get(f.get("targetRef")) for f in self.flows_from.get(gateway.get("id"), [])]
        timers = [t for t in targets if t is not None and t.find(f"{_B}timerEventDefinition") is not None]
        if len(timers) > 1:
            ids = ", ".join(str(t.get("id")) for t in timers)
            self.problem(
                gateway,
                f"event-based gateway with {len(timers)} timers ({ids}): only the first is "
                "honoured; keep one timer (the earliest deadline) and decide the rest after it",
            )

    def _sub_process(self, subprocess: Any) -> None:
        if subprocess.get("triggeredByEvent") != "true":
            return
        for start in subprocess.findall(f"{_B}startEvent"):
            if start.get("isInterrupting", "true") != "false":
                self.warning(
                    start,
                    "isInterrupting is ignored: this event subprocess runs alongside the process "
                    "without interrupting it; to interrupt, use a boundary event on a subprocess",
                )

    def _standard_loop(self, loop: Any) -> None:
        condition = loop.find(f"{_B}loopCondition")
        if condition is not None:
            self.code(loop, condition.text, "expression", "loop condition")

    def _multi_instance_loop(self, loop: Any) -> None:
        for tag, what in (("loopCardinality", "loop cardinality"), ("completionCondition", "completion condition")):
            child = loop.find(f"{_B}{tag}")
            if child is not None:
                self.code(loop, child.text, "expression", what)

    # -- tasks --------------------------------------------------------------------------------

    def _script_task(self, task: Any) -> None:
        script_format = (task.get("scriptFormat") or "").strip().lower()
        if script_format not in _PYTHON:
            self.problem(task, f"script format {script_format!r}: scripts are Python; set Format to python")
            return
        if task.get(f"{_C}resource"):
            self.problem(task, "external script resources are not supported: write the script inline")
            return
        script = task.find(f"{_B}script")
        self.code(task, script.text if script is not None else None, "script", "script")
        if task.get(f"{_C}resultVariable"):
            self.warning(task, "camunda:resultVariable is ignored: assign the variable in the script")

    def _business_rule_task(self, task: Any) -> None:
        ref = task.get(f"{_C}decisionRef")
        if not ref:
            self.problem(
                task,
                "no camunda:decisionRef: set Implementation to DMN and give the decision id "
                "(class, expression and external implementations are not supported)",
            )
        elif "${" in ref or "#{" in ref:
            self.problem(task, f"decisionRef {ref!r} uses JUEL: give the decision id itself")
        elif ref not in self.index.decisions:
            self.problem(
                task,
                f"missing DMN: no decision {ref!r} in the bundle's .dmn files "
                + self.index.missing("decisions", self.index.decisions),
            )
        for attribute in ("resultVariable", "mapDecisionResult"):
            if task.get(f"{_C}{attribute}"):
                self.warning(
                    task,
                    f"camunda:{attribute} is ignored: the table's outputs are set as variables "
                    "named after its output columns",
                )

    def _call_activity(self, task: Any) -> None:
        called = task.get("calledElement")
        process = self.index.processes.get(called or "")
        if not called:
            self.problem(task, "no called process: set Called element to the id of a process in this bundle")
        elif process is None:
            self.problem(
                task,
                f"called process {called!r} is not in the bundle "
                + self.index.missing("processes", self.index.processes),
            )
        elif not process[1]:
            self.problem(task, f"called process {called!r} ({process[0]}) is not executable: tick Executable")

    def _user_task(self, task: Any) -> None:
        # As the runner reads them: candidateGroups a list of names, assignee a user id or "=expression".
        groups, assignee = task.get(f"{_C}candidateGroups"), task.get(f"{_C}assignee")
        if groups is not None and not conv.is_name_list(groups):
            self.problem(
                task,
                f"candidateGroups {groups!r} is not a comma-separated list of group names (the service "
                "reads it literally and does not evaluate expressions): write e.g. tier1,team_lead",
            )
        if assignee is not None:
            expression = conv.assignee_expression(assignee)
            if expression is not None:
                self.code(task, expression, "expression", "assignee expression")
            elif not conv.is_name_list(assignee) or "," in assignee:
                self.problem(
                    task,
                    f"assignee {assignee!r} is neither a user id nor an expression: write e.g. "
                    "agent-7, or =requester_id for an expression",
                )
            elif assignee.isidentifier():
                self.warning(
                    task,
                    f"assignee {assignee!r} is taken as a user id, not evaluated: if it names a variable, "
                    f"write ={assignee}",
                )
        for unused in ("candidateUsers", "dueDate"):
            if task.get(f"{_C}{unused}") is not None:
                self.warning(
                    task,
                    f"camunda:{unused} is not used by the service: use candidateGroups or assignee, "
                    "and sla.* properties for deadlines",
                )
        if not (groups or assignee):
            self.warning(
                task,
                "no candidateGroups or assignee: any agent may complete it; set camunda:candidateGroups, e.g. tier1",
            )

    # -- events -------------------------------------------------------------------------------

    def _timer(self, timer: Any) -> None:
        values = [(local_name(child), child.text) for child in timer if local_name(child) in TIMER_KINDS]
        if len(values) != 1:
            self.problem(timer, 'a timer needs exactly one of Date, Duration or Cycle, e.g. Duration "PT30M"')
            return
        for message in timer_problems(values[0][0], values[0][1], self.index.calendars):
            self.problem(timer, message)

    def _message(self, definition: Any) -> None:
        event = definition.getparent()
        ref = definition.get("messageRef")
        if definition.get(f"{_C}expression") is not None:
            self.code(event, definition.get(f"{_C}expression"), "expression", "message payload expression")
        if not ref:
            self.problem(
                event,
                "the message event has no message: choose one (Modeler: Message → Global message "
                "reference) named like the event or message it stands for",
            )
            return
        if ref not in self.messages:
            self.problem(event, f"messageRef {ref!r} is not a <message> defined in this file")
            return
        name = self.messages[ref]
        if not name:
            self.problem(event, f"message {ref!r} has no name: name it like the event or message it stands for")
        elif local_name(event) in THROW_EVENTS:
            if name not in conv.EVENT_TYPES and name not in self.index.caught:
                self.warning(
                    event,
                    f"throwing message {name!r} emits nothing: no event in the bundle catches it and it is not an "
                    f"event type ({', '.join(sorted(conv.EVENT_TYPES))})",
                )
        elif name.startswith(conv.BREACHED_PREFIX):
            clock = name.removeprefix(conv.BREACHED_PREFIX)
            if clock not in self.index.clocks:
                self.warning(
                    event, f"no {conv.SLA_START} in the bundle starts clock {clock!r}, so {name!r} never comes"
                )
        elif name not in conv.INBOUND_MESSAGES and name not in self.index.thrown:
            self.warning(
                event,
                f"nothing sends message {name!r}: no event in the bundle throws it, and the service sends "
                f"{', '.join(sorted(conv.INBOUND_MESSAGES))} and sla.breached.<clock>",
            )

    def _correlation(self, retrieval: Any) -> None:
        for child in retrieval:
            if local_name(child) in ("formalExpression", "messagePath"):
                self.code(retrieval, child.text, "expression", "correlation expression")

    # -- Camunda extensions -------------------------------------------------------------------

    def _property(self, prop: Any) -> None:
        properties = prop.getparent()
        extension = properties.getparent() if properties is not None else None
        if extension is None or extension.tag != f"{_B}extensionElements":
            return  # a form field's property, not the element's
        element = extension.getparent()
        name, value = prop.get("name") or "", prop.get("value") or ""
        unknown = conv.unknown_property_problem(name)
        if unknown:
            self.problem(element, unknown)
        elif name == conv.SLA_START:
            for message in conv.parse_sla_start(value)[1]:
                self.problem(element, message)
        elif name in conv.SLA_CLOCK_PROPERTIES:
            for message in conv.clock_list_problems(name, value, self.index.clocks):
                self.problem(element, message)
        elif name == conv.FOUR_EYES:
            self._four_eyes(element, value)

    def _four_eyes(self, element: Any, value: str) -> None:
        if local_name(element) != "userTask":
            self.problem(element, f"{conv.FOUR_EYES} belongs on a user task")
            return
        process = next(element.iterancestors(f"{_B}process"), None)
        user_tasks = {t.get("id") for t in process.iter(f"{_B}userTask")} if process is not None else set()
        ids = conv.split_list(value)
        if not ids:
            self.problem(
                element, f"{conv.FOUR_EYES} is empty: give the ids of the user tasks whose performer is excluded"
            )
        for task_id in ids:
            if task_id not in user_tasks:
                known = ", ".join(sorted(str(t) for t in user_tasks))
                self.problem(
                    element, f"{conv.FOUR_EYES}: {task_id!r} is not a user task of this process (user tasks: {known})"
                )

    def _form_field(self, field: Any) -> None:
        field_type = field.get("type") or ""
        if field_type not in conv.FORM_FIELD_TYPES:
            self.problem(
                field,
                f"form field {field.get('id')!r} has type {field_type!r}: use one of "
                f"{', '.join(conv.FORM_FIELD_TYPES)}",
            )

    def _variable_mapping(self, mapping: Any) -> None:
        if mapping.get("variables") == "all" and len(mapping.attrib) == 1:
            return  # `variables="all"` is what the engine does anyway
        self.warning(
            mapping,
            "camunda:in/out mappings are ignored: the called process gets all variables and "
            "all of its variables are copied back",
        )
