"""One ticket on its way through the process, as the demo's people move it: claiming and
completing tasks, the requester's calls, and the timeline printed after each move. The steps
themselves are in `story`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supportflow.intake.v1 import intake_pb2
from supportflow.workflow.v1 import workflow_pb2

from services.demo.cast import REQUESTER, Person
from services.demo.desk import Desk, form
from services.demo.timeline import Timeline


def request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Run:
    desk: Desk
    timeline: Timeline
    #: 1 for the demo's first ticket, 2 for the second…
    sequence: int = 1
    number: str = ""

    def report(self) -> None:
        """Print what the system did since the last report (a service that does not answer right now
        is caught up with at the next report)."""
        desk, number = self.desk, self.number
        self.timeline.catch_up(
            number, desk.quietly(lambda: desk.instance(number)), desk.quietly(lambda: desk.ticket(number))
        )

    def task(self, element_id: str) -> workflow_pb2.Task:
        """The ticket's open task `element_id` (e.g. "Task_AssignTicket"), once the workflow opened it."""
        return self.desk.task(self.number, element_id)

    def claim(self, who: Person, element_id: str) -> workflow_pb2.Task:
        task = self.task(element_id)
        claimed = self.desk.call(
            "workflow", self.desk.workflow.ClaimTask, workflow_pb2.ClaimTaskRequest(task_id=task.task_id), who
        )
        self.timeline.act(None, who, f"claims «{task.name}» (queue: {', '.join(task.candidate_groups)})")
        return claimed

    def complete(self, who: Person, element_id: str, say: str, **values: Any) -> workflow_pb2.Task:
        task = self.task(element_id)
        done = self.desk.call(
            "workflow",
            self.desk.workflow.CompleteTask,
            workflow_pb2.CompleteTaskRequest(task_id=task.task_id, variables=form(**values), request_id=request_id()),
            who,
        )
        self.timeline.act(done.completed_at, who, f"completes «{task.name}»: {say}")
        self.report()
        return done

    def refused(self, who: Person, element_id: str, say: str, **values: Any) -> None:
        """`who` tries to complete a task that a four-eyes rule keeps from them."""
        task = self.task(element_id)
        code, message = self.desk.refusal(
            "workflow",
            self.desk.workflow.CompleteTask,
            workflow_pb2.CompleteTaskRequest(task_id=task.task_id, variables=form(**values), request_id=request_id()),
            who,
        )
        self.timeline.act(None, who, say, f"✘ refused, {code.name}: {message}")

    def requester(self, what: str, ticket: intake_pb2.Ticket, *more: str) -> None:
        self.timeline.act(ticket.updated_at, REQUESTER, what, *more)


@dataclass(frozen=True)
class Step:
    """`act`: what people do; `settle`: wait until the system has reacted as a person would see it.
    Kept apart so that a test can do something in between, e.g. restart a service while the
    consequences of an act are on their way."""

    key: str
    title: str
    act: Callable[[Run], None]
    settle: Callable[[Run], None]


def play(run: Run, steps: tuple[Step, ...], *, between: Callable[[Step], None] | None = None) -> None:
    """Every step in order; `between(step)` runs after a step's act and before its settle."""
    for index, step in enumerate(steps, 1):
        run.timeline.heading(index, step.title)
        step.act(run)
        if between is not None:
            between(step)
        step.settle(run)
