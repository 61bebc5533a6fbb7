"""How events move a ticket's status as the requester sees it (SOP §1: 待处理 pending, 已受理
accepted, 处理中 in progress, 已完成 completed) — one definition for every service that follows a
ticket from its events (intake's read model, notify's ticket context), so a notice never tells a
status the portal does not show. Statuses are `common.v1.TicketStatus` names in lower case.

The status only moves forward along the lifecycle

    pending → waiting_for_requester (the hold of SOP §2) → accepted → in_progress → resolved
    → completed → closed

and back only where the SOP sends the ticket back (§9): a failed user verification returns it to
implementation (intake's `ConfirmResolution`), and a dissatisfied rating brings a revisit
(`ticket.revisit_required`). So a late or repeated event — a reclassification, tier 2 taking the
ticket over, an information reminder — never moves it back.

- *Accepted* (已受理) is a ticket classified and routed to a team, or given its handler: seed 002
  sends the handler the ticket and sets 已受理 then. The information hold comes between
  classification and assignment (SOP §2: assignment waits for the information).
- *In progress* (处理中) is somebody working on a ticket that has its handler: the first task
  claimed or completed after the assignment (the handler's diagnosis or emergency contact, tier 2
  responding to an escalation). Claims and completions before it — the dispatcher taking the
  assignment task, tier 1 obtaining missing information — are not handling. An escalation alone
  moves nothing either: the assignment clock's breach escalates a ticket nobody handles yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PENDING: Final = "pending"
WAITING: Final = "waiting_for_requester"
ACCEPTED: Final = "accepted"
IN_PROGRESS: Final = "in_progress"
RESOLVED: Final = "resolved"
COMPLETED: Final = "completed"
CLOSED: Final = "closed"
CANCELLED: Final = "cancelled"

STATUSES: Final = (PENDING, WAITING, ACCEPTED, IN_PROGRESS, RESOLVED, COMPLETED, CLOSED, CANCELLED)
#: Statuses nothing moves a ticket out of (a late event does not reopen it).
TERMINAL: Final = frozenset({CLOSED, CANCELLED})
OPEN: Final = frozenset(STATUSES) - TERMINAL


@dataclass(frozen=True, slots=True)
class Move:
    """An event takes a ticket `to` a status, from the statuses in `origins` only."""

    to: str
    origins: frozenset[str]
    #: Only once the ticket has its handler (work before the assignment is not handling it).
    needs_handler: bool = False


_WORK = Move(IN_PROGRESS, frozenset({ACCEPTED}), needs_handler=True)

#: Event type → how it moves the status, for the events of the process (the workflow's). The
#: requester's own actions are intake's commands: see `after_supplement`, `after_verification`.
MOVES: Final[dict[str, Move]] = {
    "ticket.classified": Move(ACCEPTED, frozenset({PENDING})),
    "ticket.info_requested": Move(WAITING, frozenset({PENDING, ACCEPTED})),
    "ticket.assigned": Move(ACCEPTED, frozenset({PENDING, WAITING})),
    "task.claimed": _WORK,
    "task.completed": _WORK,
    "ticket.resolved": Move(RESOLVED, frozenset({PENDING, WAITING, ACCEPTED, IN_PROGRESS})),
    # Back from resolved or completed: SOP §9, a dissatisfied requester is revisited.
    "ticket.revisit_required": Move(IN_PROGRESS, OPEN),
    "ticket.closed": Move(CLOSED, OPEN),
}


def next_status(current: str, event_type: str, *, has_handler: bool) -> str:
    """The status after `event_type`; `has_handler`: the ticket has been assigned to a person."""
    move = MOVES.get(event_type)
    if move is None or current not in move.origins or (move.needs_handler and not has_handler):
        return current
    return move.to


def after_supplement(current: str, *, classified: bool) -> str:
    """The requester supplied the missing information: the hold is over (SOP §2), the ticket is
    where it was before it — accepted if the process had already classified it."""
    if current != WAITING:
        return current
    return ACCEPTED if classified else PENDING


def after_verification(accepted: bool) -> str:
    """The requester verified a resolved ticket (SOP §9): completed, or back to implementation."""
    return COMPLETED if accepted else IN_PROGRESS
