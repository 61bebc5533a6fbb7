"""Intake's ticket statuses moved as `services.kit.lifecycle` defines for every service that
follows a ticket (SOP §1; read there how and why)."""

from __future__ import annotations

from services.intake.domain.model import TicketStatus
from services.kit import lifecycle


def next_status(current: TicketStatus, event_type: str, *, has_handler: bool) -> TicketStatus:
    """The status after the workflow's `event_type`; `has_handler`: the ticket has been assigned."""
    return TicketStatus(lifecycle.next_status(current.value, event_type, has_handler=has_handler))


def after_supplement(current: TicketStatus, *, classified: bool) -> TicketStatus:
    """The requester supplied the missing information: the hold is over (SOP §2)."""
    return TicketStatus(lifecycle.after_supplement(current.value, classified=classified))
