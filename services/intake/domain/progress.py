"""How events move a ticket's status as the requester sees it (SOP §1: 待处理 pending, 已受理
accepted, 处理中 in progress, 已完成 completed).

The status only moves forward along the lifecycle

    PENDING → WAITING_FOR_REQUESTER (the hold of SOP §2) → ACCEPTED → IN_PROGRESS → RESOLVED
    → COMPLETED → CLOSED

and back only where the SOP sends the ticket back (§9): a failed user verification returns it to
implementation (intake's own `ConfirmResolution`, `Ticket.confirm_resolution`), and a dissatisfied
rating brings a revisit (`ticket.revisit_required`). So a late or repeated event — a
reclassification, tier 2 taking the ticket over, an information reminder — never moves it back.

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

from services.intake.domain.model import TicketStatus

PENDING = TicketStatus.PENDING
WAITING = TicketStatus.WAITING_FOR_REQUESTER
ACCEPTED = TicketStatus.ACCEPTED
IN_PROGRESS = TicketStatus.IN_PROGRESS
RESOLVED = TicketStatus.RESOLVED
COMPLETED = TicketStatus.COMPLETED

#: Statuses nothing moves a ticket out of (a late event does not reopen it).
TERMINAL = frozenset({TicketStatus.CLOSED, TicketStatus.CANCELLED})
OPEN = frozenset(TicketStatus) - TERMINAL


@dataclass(frozen=True, slots=True)
class Move:
    """An event takes a ticket `to` a status, from the statuses in `origins` only."""

    to: TicketStatus
    origins: frozenset[TicketStatus]
    #: Only once the ticket has its handler (work before the assignment is not handling it).
    needs_handler: bool = False


_WORK = Move(IN_PROGRESS, frozenset({ACCEPTED}), needs_handler=True)

#: event type → how it moves the status. Events not listed only add a timeline entry.
MOVES: dict[str, Move] = {
    "ticket.classified": Move(ACCEPTED, frozenset({PENDING})),
    "ticket.info_requested": Move(WAITING, frozenset({PENDING, ACCEPTED})),
    "ticket.assigned": Move(ACCEPTED, frozenset({PENDING, WAITING})),
    "task.claimed": _WORK,
    "task.completed": _WORK,
    "ticket.resolved": Move(RESOLVED, frozenset({PENDING, WAITING, ACCEPTED, IN_PROGRESS})),
    # Back from resolved or completed: SOP §9, a dissatisfied requester is revisited.
    "ticket.revisit_required": Move(IN_PROGRESS, OPEN),
    "ticket.closed": Move(TicketStatus.CLOSED, OPEN),
}


def next_status(current: TicketStatus, event_type: str, *, has_handler: bool) -> TicketStatus:
    """The status after `event_type`; `has_handler`: the ticket has been assigned to a person."""
    move = MOVES.get(event_type)
    if move is None or current not in move.origins or (move.needs_handler and not has_handler):
        return current
    return move.to


def after_supplement(current: TicketStatus, *, classified: bool) -> TicketStatus:
    """The requester supplied the missing information: the hold is over (SOP §2), the ticket is
    where it was before it — accepted if the process had already classified it."""
    if current is not WAITING:
        return current
    return ACCEPTED if classified else PENDING
