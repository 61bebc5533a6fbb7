"""Who handles a ticket (SOP §4: one main handler, plus co-handlers when several teams are needed).

The ticket's handler is the process variable `assignee`: the default bundle's later handling tasks
go to it (`camunda:assignee="=assignee"`). A person sets it by completing a task whose form has an
`assignee` field — the dispatcher's *Assign ticket*, tier 2's *Respond to escalation* when an
engineer takes the ticket over — and that completion is the ticket's assignment (`ticket.assigned`).
Claiming a task is not: the change manager who claims an approval, or the reviewer who claims a
review, works on the ticket without becoming its handler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The process variables an assignment reads.
ASSIGNEE, CO_HANDLERS, TEAM = "assignee", "co_handlers", "team"


@dataclass(frozen=True, slots=True)
class Assignment:
    team: str
    assignee: str
    co_handlers: tuple[str, ...] = ()


def assignment_made(submitted: Mapping[str, Any], variables: Mapping[str, Any]) -> Assignment | None:
    """The assignment a completed task made, if it made one: `submitted` are the task's validated
    variables, `variables` the process variables before it. Co-handlers and the team carry over
    from the process variables when the task does not set them (a tier-2 engineer taking over keeps
    the co-handlers the dispatcher named)."""
    assignee = submitted.get(ASSIGNEE)
    if not isinstance(assignee, str) or not assignee.strip():
        return None
    merged = {**variables, **submitted}
    assignee = assignee.strip()
    others = [name for name in names(merged.get(CO_HANDLERS)) if name != assignee]
    team = merged.get(TEAM)
    return Assignment(team.strip() if isinstance(team, str) else "", assignee, tuple(dict.fromkeys(others)))


def names(value: Any) -> list[str]:
    """Co-handlers as a form gives them ("a, b" or one per line) or a script sets them (a list)."""
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,\n;，、]", value) if part.strip()]
    if isinstance(value, list | tuple):
        return [str(part).strip() for part in value if str(part).strip()]
    return []
