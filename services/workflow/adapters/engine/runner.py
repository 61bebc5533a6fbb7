"""The SpiffWorkflow adapter of the `ProcessEngine` port: runs instances of one deployment.

Every operation does what was asked (start, complete a task, deliver a message, wake timers),
then lets the engine run as far as it can, and reports the difference as an `Advance`: user tasks
opened and withdrawn, steps entered (their properties drive SLA clocks), messages thrown, the
earliest timer still waiting, an incident if diagram code failed. The service persists the state
and acts on the report; nothing here does I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import ThrowingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from services.workflow.adapters.engine import state
from services.workflow.adapters.engine.explain import explain_business_rules
from services.workflow.adapters.sandbox import SandboxedScriptEngine
from services.workflow.application.engine import (
    ActiveStep,
    Advance,
    EngineIncident,
    EnteredStep,
    NotWaitingFor,
    OpenedTask,
    ProcessInstanceHandle,
    ThrownEvent,
)
from services.workflow.domain.tasks import FormField

#: Where a delivered message's payload is also kept whole (its variables are merged into the data).
MESSAGE_VARIABLE = "last_message"
_JUST_AFTER = timedelta(microseconds=1)
_REACHED = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.COMPLETED | TaskState.ERROR


class SpiffInstance:
    def __init__(self, workflow: BpmnWorkflow) -> None:
        self.workflow = workflow

    def dump(self) -> bytes:
        return state.dump(self.workflow)


class _EngineForDiagrams(SandboxedScriptEngine):
    """Message throw events without a payload expression (the usual case in Modeler) evaluate None."""

    def evaluate(self, task: Any, expression: Any, external_context: Mapping[str, Any] | None = None) -> Any:
        if expression is None:
            return None
        return super().evaluate(task, expression, external_context)


class SpiffProcessEngine:
    """Runs instances of one parsed process (with the subprocesses it calls)."""

    def __init__(
        self,
        spec: BpmnProcessSpec,
        subprocess_specs: Mapping[str, BpmnProcessSpec],
        *,
        diagram_functions: Mapping[str, Callable[..., Any]],
        step_time_limit: float,
    ) -> None:
        self._spec, self._subprocess_specs = spec, dict(subprocess_specs)
        explain_business_rules([spec, *self._subprocess_specs.values()])
        self._script_engine = _EngineForDiagrams(step_time_limit, diagram_functions)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, variables: Mapping[str, Any]) -> tuple[SpiffInstance, Advance]:
        workflow = BpmnWorkflow(self._spec, self._subprocess_specs, script_engine=self._script_engine)
        instance = SpiffInstance(workflow)
        before = _states(workflow)
        start = workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            start.data.update(copy.deepcopy(dict(variables)))
        return instance, self._run(instance, before)

    def load(self, saved: bytes) -> SpiffInstance:
        workflow = state.load(saved, self._spec, self._subprocess_specs)
        workflow.script_engine = self._script_engine  # not part of the saved state
        return SpiffInstance(workflow)

    def complete_task(self, instance: ProcessInstanceHandle, task_id: str, variables: Mapping[str, Any]) -> Advance:
        instance = _spiff(instance)
        workflow = instance.workflow
        task = _find(workflow, task_id)
        if task is None or not isinstance(task.task_spec, UserTask) or task.state != TaskState.READY:
            raise NotWaitingFor(f"task {task_id} is not open")
        before = _states(workflow)
        task.data.update(copy.deepcopy(dict(variables)))
        return self._run(instance, before, first=task)

    def deliver_message(self, instance: ProcessInstanceHandle, name: str, variables: Mapping[str, Any]) -> Advance:
        instance = _spiff(instance)
        workflow = instance.workflow
        waiting = [
            t
            for t in workflow.event_manager.tasks.values()
            if isinstance(t.task_spec.event_definition, MessageEventDefinition)
            and t.task_spec.event_definition.name == name
        ]
        if not waiting:
            raise NotWaitingFor(f"the process is not waiting for message {name!r}")
        before = _states(workflow)
        payload = copy.deepcopy(dict(variables))
        event = BpmnEvent(waiting[0].task_spec.event_definition, {"payload": payload, "result_var": MESSAGE_VARIABLE})
        try:
            workflow.send_event(event)
        except SpiffWorkflowException as error:
            return self._report(instance, before, thrown=[], incident=_incident(error))
        for task in waiting:
            # The catching step now holds its parent's data; the message's variables go on top,
            # and its successors inherit them.
            if task.state != TaskState.WAITING:
                task.data.update(copy.deepcopy(payload))
        return self._run(instance, before)

    def wake(self, instance: ProcessInstanceHandle) -> Advance:
        instance = _spiff(instance)
        before = _states(instance.workflow)
        return self._run(instance, before, refresh=True)

    def retry(self, instance: ProcessInstanceHandle, variables: Mapping[str, Any]) -> Advance:
        instance = _spiff(instance)
        workflow = instance.workflow
        failed = [t for t in _all_tasks(workflow) if t.state == TaskState.ERROR]
        if not failed:
            raise NotWaitingFor("no step of the process failed")
        before = _states(workflow)
        for task in failed:
            # What the step started with (its parent's data), the fix on top; the step becomes
            # ready again and the run below takes it from there.
            data = copy.deepcopy(task.parent.data)
            data.update(copy.deepcopy(dict(variables)))
            workflow.reset_from_task_id(task.id, data)
        return self._run(instance, before)

    def cancel(self, instance: ProcessInstanceHandle) -> Advance:
        instance = _spiff(instance)
        workflow = instance.workflow
        before = _states(workflow)
        workflow.cancel()
        return self._report(instance, before, thrown=[], incident=None)

    # -- running -----------------------------------------------------------------------------

    def _run(
        self,
        instance: SpiffInstance,
        before: dict[Any, int],
        *,
        first: Task | None = None,
        event: BpmnEvent | None = None,
        refresh: bool = False,
    ) -> Advance:
        workflow = instance.workflow
        thrown: list[ThrownEvent] = []

        def did_complete(task: Task) -> None:
            spec = task.task_spec
            definition = getattr(spec, "event_definition", None)
            if isinstance(spec, ThrowingEvent) and isinstance(definition, MessageEventDefinition):
                thrown.append(ThrownEvent(definition.name, spec.bpmn_id or spec.name, _plain(task.data)))

        incident = None
        try:
            if first is not None:
                first.run()
                did_complete(first)
            if event is not None:
                workflow.send_event(event)
            if refresh:
                workflow.refresh_timers()
            workflow.do_engine_steps(did_complete_task=did_complete)
        except SpiffWorkflowException as error:
            incident = _incident(error)
        workflow.get_events()  # thrown events are reported above; they are not part of the state
        return self._report(instance, before, thrown=thrown, incident=incident)

    def _report(
        self,
        instance: SpiffInstance,
        before: dict[Any, int],
        *,
        thrown: list[ThrownEvent],
        incident: EngineIncident | None,
    ) -> Advance:
        workflow = instance.workflow
        tasks = _all_tasks(workflow)
        opened, withdrawn, entered = [], [], []
        for task in tasks:
            was = before.get(task.id, TaskState.FUTURE)
            spec = task.task_spec
            if task.state & _REACHED and not was & _REACHED and _is_flow_node(task):
                entered.append(EnteredStep(spec.bpmn_id, spec.bpmn_name or "", type(spec).__name__, _properties(spec)))
            if isinstance(spec, UserTask):
                if task.state == TaskState.READY and was != TaskState.READY:
                    opened.append(self._opened(task))
                elif was == TaskState.READY and task.state == TaskState.CANCELLED:
                    withdrawn.append(str(task.id))
        return Advance(
            opened=tuple(opened),
            withdrawn=tuple(withdrawn),
            entered=tuple(entered),
            thrown=tuple(thrown),
            finished=workflow.is_completed(),
            incident=incident,
            next_timer_at=_next_timer(workflow),
            active=tuple(_active(tasks)),
            variables=_variables(workflow, tasks),
        )

    def _opened(self, task: Task) -> OpenedTask:
        spec = task.task_spec
        extensions: Mapping[str, str] = getattr(spec, "extensions", None) or {}
        groups = _csv(extensions.get("candidateGroups", ""))
        assignee = extensions.get("assignee", "")
        expression = assignee[1:] if assignee.startswith("=") else assignee.removeprefix("expr:")
        if expression != assignee:  # "=expr" or "expr:expr": computed from the process variables
            assignee = str(self._script_engine.evaluate(task, expression.strip()) or "")
        return OpenedTask(
            task_id=str(task.id),
            element_id=spec.bpmn_id,
            name=spec.bpmn_name or spec.bpmn_id,
            candidate_groups=groups,
            assignee=assignee,
            form=_form(spec),
            exclude_performers_of=_csv(extensions.get("fourEyes.excludePerformerOf", "")),
            properties={k: v for k, v in extensions.items() if isinstance(v, str)},
        )


def _spiff(instance: ProcessInstanceHandle) -> SpiffInstance:
    if not isinstance(instance, SpiffInstance):
        raise TypeError(f"not an instance of this engine: {instance!r}")
    return instance


# -- reading the engine's state ------------------------------------------------------------------


def _all_tasks(workflow: BpmnWorkflow) -> list[Task]:
    """Every task of the instance once, in the order of `workflow.get_tasks()`: depth first, a
    subprocess's or call activity's tasks right after the task that runs it, then that task's
    children. (Walked here: SpiffWorkflow's iterator re-checks filters and depth per task and was
    most of the cost of reporting; unlike it, this one has no depth limit of 1,000.) Tasks of a
    subprocess no task of the tree runs, if ever there were any, come last."""
    subprocesses = workflow.subprocesses
    found: list[Task] = []
    stack = [workflow.task_tree]
    while stack:
        task = stack.pop()
        found.append(task)
        siblings = task.workflow.tasks
        stack.extend(siblings[child] for child in reversed(task._children) if child in siblings)
        if (sub := subprocesses.get(task.id)) is not None:
            stack.append(sub.task_tree)
    if len(found) < len(workflow.tasks) + sum(len(sub.tasks) for sub in subprocesses.values()):
        seen = {t.id for t in found}
        for sub in subprocesses.values():
            for task in sub.get_tasks():
                if task.id not in seen:
                    seen.add(task.id)
                    found.append(task)
    return found


def _states(workflow: BpmnWorkflow) -> dict[Any, int]:
    return {t.id: t.state for t in _all_tasks(workflow)}


def _find(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    from uuid import UUID

    try:
        key = UUID(task_id)
    except ValueError:
        return None
    task: Task | None = workflow.get_task_from_id(key)
    return task


def _is_flow_node(task: Task) -> bool:
    """Diagram elements (SpiffWorkflow adds hidden helper tasks such as Start and End)."""
    return bool(getattr(task.task_spec, "bpmn_id", None))


def _properties(spec: Any) -> dict[str, str]:
    extensions = getattr(spec, "extensions", None) or {}
    return {k: v for k, v in extensions.items() if isinstance(v, str)}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _form(spec: Any) -> tuple[FormField, ...]:
    form = getattr(spec, "form", None)
    if form is None:
        return ()
    fields = []
    for f in getattr(form, "fields", []):
        required = any(getattr(v, "name", "") == "required" for v in getattr(f, "validation", []))
        choices = tuple(str(getattr(o, "id", "")) for o in getattr(f, "options", []) or [])
        fields.append(FormField(f.id, f.label or f.id, f.type or "string", required, choices))
    return tuple(fields)


def _active(tasks: list[Task]) -> list[ActiveStep]:
    steps = []
    for task in tasks:
        spec = task.task_spec
        if not _is_flow_node(task) or isinstance(spec, SubWorkflowTask):
            continue
        if task.state == TaskState.READY or (task.state == TaskState.WAITING and hasattr(spec, "event_definition")):
            steps.append(ActiveStep(spec.bpmn_id, spec.bpmn_name or "", type(spec).__name__))
    return steps


def _next_timer(workflow: BpmnWorkflow) -> datetime | None:
    due: list[datetime] = []
    for task in workflow.event_manager.tasks.values():
        definition = task.task_spec.event_definition
        if not isinstance(definition, TimerEventDefinition):
            continue
        value = task.internal_data.get("event_value")
        if isinstance(value, dict):  # cycle timers keep {"cycles": n, "next": iso, "duration": s}
            value = value.get("next")
        if isinstance(value, str):
            try:
                due.append(TimerEventDefinition.get_datetime(value))
            except (ValueError, TypeError):
                continue
    # The engine fires a timer once "now" is past its due time, not at it: wake just after.
    return min(due) + _JUST_AFTER if due else None


def _variables(workflow: BpmnWorkflow, tasks: list[Task]) -> dict[str, Any]:
    """The process variables as the most recent step sees them (data flows forward, so the last
    task to change state carries everything before it)."""
    if workflow.is_completed():
        return _plain(workflow.data)

    def newest(states: int) -> Task | None:
        found: Task | None = None
        for task in tasks:
            newer = found is None or task.last_state_change > found.last_state_change
            if task.state & states and _is_flow_node(task) and newer:
                found = task
        return found

    # The steps waiting now hold the current data; once nothing waits, the last completed step.
    latest = newest(TaskState.READY | TaskState.WAITING) or newest(TaskState.COMPLETED)
    return _plain(latest.data) if latest is not None else {}


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of task data (what events and the API may carry); values JSON cannot hold
    become their text."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return plain


def _incident(error: SpiffWorkflowException) -> EngineIncident:
    task = getattr(error, "task", None)
    element = (task.task_spec.bpmn_id or task.task_spec.name) if task is not None else ""
    return EngineIncident(element, _message(error))


def _message(error: SpiffWorkflowException) -> str:
    notes = " ".join(getattr(error, "notes", []) or [])
    return f"{error}" + (f" ({notes})" if notes else "")
