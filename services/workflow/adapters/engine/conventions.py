"""The conventions of bpmn/README.md that the service relies on at run time, checked at deploy:
SLA clock properties, four-eyes rules, user task assignment and form fields, and the message
names that connect a diagram to the service's events."""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

SLA_START: Final = "sla.start"
SLA_CLOCK_PROPERTIES: Final = ("sla.pause", "sla.resume", "sla.stop")
FOUR_EYES: Final = "fourEyes.excludePerformerOf"
BREACHED_PREFIX: Final = "sla.breached."
FORM_FIELD_TYPES: Final = ("string", "long", "boolean", "enum", "date")
#: Message names a throw event may use: each emits the event type of the same name.
EVENT_TYPES: Final = frozenset(
    {
        "ticket.classified",
        "ticket.info_requested",
        "ticket.escalated",
        "ticket.progress_due",
        "change.approval_requested",
        "change.decided",
        "review.requested",
        "review.decided",
        "ticket.resolved",
        "ticket.survey_requested",
        "ticket.revisit_required",
        "ticket.closed",
    }
)
#: Messages the service sends to an instance (besides sla.breached.<clock>).
INBOUND_MESSAGES: Final = frozenset({"ticket.supplemented", "ticket.verified", "ticket.rated", "ticket.cancelled"})

_CLOCK = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_GROUP = r"(?:[\w.@-]+|\$\{\s*[A-Za-z]\w*\s*\})"
_NAME_LIST = re.compile(rf"^\s*{_GROUP}(\s*,\s*{_GROUP})*\s*$")


@dataclass(frozen=True)
class ClockStart:
    clock: str
    variable: str


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def is_name_list(value: str) -> bool:
    """``tier1,team_lead``: literal names; ``${candidate_group}`` names a process variable holding
    the group (or a list of groups), e.g. the team a DMN table routed the ticket to."""
    return bool(_NAME_LIST.match(value))


def assignee_expression(value: str) -> str | None:
    """The expression in an assignee written ``=expr`` or ``expr:expr`` (as the runner reads it);
    None for a literal user id."""
    if value.startswith("="):
        return value[1:].strip()  # exactly what the runner evaluates
    if value.startswith("expr:"):
        return value.removeprefix("expr:").strip()
    return None


def parse_sla_start(value: str) -> tuple[list[ClockStart], list[str]]:
    """``assign:assign_within[, resolve:resolve_within]`` → clock starts, and problems."""
    starts, problems = [], []
    parts = split_list(value)
    if not parts:
        problems.append(f'{SLA_START} is empty: write clock:variable, e.g. "assign:assign_within"')
    for part in parts:
        clock, _, variable = (piece.strip() for piece in part.partition(":"))
        if not _CLOCK.match(clock) or not _is_variable(variable):
            problems.append(
                f'{SLA_START} {part!r} is not clock:variable, e.g. "assign:assign_within" (clock names are '
                'letters, digits and _; the variable holds the target duration, e.g. "PT4H")'
            )
        else:
            starts.append(ClockStart(clock, variable))
    return starts, problems


def clock_list_problems(name: str, value: str, started: Iterable[str]) -> list[str]:
    """Problems with ``sla.pause`` / ``sla.resume`` / ``sla.stop``: names of clocks some
    ``sla.start`` in the bundle starts."""
    known = set(started)
    clocks = split_list(value)
    if not clocks:
        return [f'{name} is empty: name the clock(s), e.g. "resolve"']
    problems = []
    for clock in clocks:
        if not _CLOCK.match(clock):
            problems.append(f"{name}: {clock!r} is not a clock name (letters, digits and _)")
        elif clock not in known:
            hint = f" (started clocks: {', '.join(sorted(known))})" if known else ""
            problems.append(f"{name}: no {SLA_START} in the bundle starts clock {clock!r}{hint}")
    return problems


def unknown_property_problem(name: str) -> str | None:
    if name.startswith("sla.") and name not in (SLA_START, *SLA_CLOCK_PROPERTIES):
        return f"unknown property {name!r}: the SLA properties are {', '.join((SLA_START, *SLA_CLOCK_PROPERTIES))}"
    if name.startswith("fourEyes.") and name != FOUR_EYES:
        return f"unknown property {name!r}: the four-eyes property is {FOUR_EYES}"
    return None


def _is_variable(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_") and not keyword.iskeyword(name)
