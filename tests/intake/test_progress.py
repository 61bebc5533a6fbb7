"""The status rules alone (pure, milliseconds): every event from every status only moves a ticket
forward along SOP §1's lifecycle, except where the SOP sends it back."""

from __future__ import annotations

import pytest

from services.intake.domain.model import TicketStatus
from services.intake.domain.progress import after_supplement, next_status
from services.kit.events import EVENT_TYPES
from services.kit.lifecycle import MOVES

T = TicketStatus
#: How far along the lifecycle a status is. The information hold sits beside "accepted": the
#: default bundle asks for information after classifying, and the assignment ends the hold.
RANK = {
    T.PENDING: 0,
    T.WAITING_FOR_REQUESTER: 1,
    T.ACCEPTED: 1,
    T.IN_PROGRESS: 2,
    T.RESOLVED: 3,
    T.COMPLETED: 4,
    T.CLOSED: 5,
}
#: SOP §9: a dissatisfied rating brings a revisit (the failed verification is intake's own RPC).
SENT_BACK = {("ticket.revisit_required", T.RESOLVED), ("ticket.revisit_required", T.COMPLETED)}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
@pytest.mark.parametrize("current", list(TicketStatus))
@pytest.mark.parametrize("has_handler", [False, True])
def test_no_event_moves_a_ticket_back_unless_the_sop_says_so(
    event_type: str, current: TicketStatus, has_handler: bool
) -> None:
    after = next_status(current, event_type, has_handler=has_handler)
    if current in (T.CLOSED, T.CANCELLED):
        assert after is current
    elif (event_type, current) in SENT_BACK:
        assert after is T.IN_PROGRESS
    else:
        assert RANK[after] >= RANK[current], f"{event_type} moves {current.value} back to {after.value}"


def test_every_listed_move_is_an_event_that_exists() -> None:
    assert set(MOVES) <= set(EVENT_TYPES)


def test_the_default_bundles_order_of_events() -> None:
    steps = [
        ("ticket.classified", False, T.ACCEPTED),
        ("ticket.info_requested", False, T.WAITING_FOR_REQUESTER),
        ("task.claimed", False, T.WAITING_FOR_REQUESTER),  # tier 1 takes the information task
        ("ticket.info_requested", False, T.WAITING_FOR_REQUESTER),  # the reminder
        ("task.claimed", False, T.WAITING_FOR_REQUESTER),  # the dispatcher takes Assign ticket
        ("task.completed", False, T.WAITING_FOR_REQUESTER),
        ("ticket.assigned", False, T.ACCEPTED),
        ("task.created", True, T.ACCEPTED),
        ("ticket.escalated", True, T.ACCEPTED),  # the response clock breached: nobody worked on it
        ("task.claimed", True, T.IN_PROGRESS),  # tier 2 takes the escalation
        ("ticket.assigned", True, T.IN_PROGRESS),  # and the ticket over
        ("ticket.classified", True, T.IN_PROGRESS),  # priority corrected
        ("task.claimed", True, T.IN_PROGRESS),  # the change manager takes the approval
        ("ticket.resolved", True, T.RESOLVED),
        ("ticket.closed", True, T.CLOSED),
    ]
    status = T.PENDING
    for event_type, has_handler, expected in steps:
        status = next_status(status, event_type, has_handler=has_handler)
        assert status is expected, event_type


def test_a_supplement_ends_the_hold_only() -> None:
    assert after_supplement(T.WAITING_FOR_REQUESTER, classified=True) is T.ACCEPTED
    assert after_supplement(T.WAITING_FOR_REQUESTER, classified=False) is T.PENDING
    assert after_supplement(T.IN_PROGRESS, classified=True) is T.IN_PROGRESS
    assert after_supplement(T.PENDING, classified=False) is T.PENDING
