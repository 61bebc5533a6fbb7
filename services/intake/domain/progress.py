"""How the workflow's events move a ticket's status as the requester sees it (SOP §1 statuses)."""

from __future__ import annotations

from services.intake.domain.model import TicketStatus

#: event type → status the ticket takes. Events not listed only add a timeline entry.
STATUS_AFTER: dict[str, TicketStatus] = {
    "ticket.info_requested": TicketStatus.WAITING_FOR_REQUESTER,
    "ticket.classified": TicketStatus.ACCEPTED,
    "ticket.assigned": TicketStatus.ACCEPTED,
    "task.claimed": TicketStatus.IN_PROGRESS,
    "ticket.escalated": TicketStatus.IN_PROGRESS,
    "ticket.revisit_required": TicketStatus.IN_PROGRESS,
    "ticket.resolved": TicketStatus.RESOLVED,
    "ticket.closed": TicketStatus.CLOSED,
}

#: Statuses the process cannot move a ticket out of (a late event does not reopen it).
TERMINAL = frozenset({TicketStatus.CLOSED, TicketStatus.CANCELLED})


def next_status(current: TicketStatus, event_type: str) -> TicketStatus:
    if current in TERMINAL:
        return current
    if event_type == "ticket.classified" and current is not TicketStatus.PENDING:
        return current  # a re-classification does not move an ongoing ticket back
    if event_type == "task.claimed" and current not in (TicketStatus.ACCEPTED, TicketStatus.PENDING):
        return current
    return STATUS_AFTER.get(event_type, current)
