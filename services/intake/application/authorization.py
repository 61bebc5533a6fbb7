"""Who may do what with tickets.

- requester: submits for themselves; sees and changes only their own tickets.
- agent, team_lead: see every ticket of their organisation, comment, cancel, submit on a
  requester's behalf (hotline).
- integration (portal, e-mail gateway, chat bot): acts for the organisation's requesters.
Nobody crosses organisations.
"""

from __future__ import annotations

from services.intake.domain.errors import NotAllowed, TicketNotFound
from services.intake.domain.model import Ticket
from services.kit.auth import AGENT, INTEGRATION, REQUESTER, SERVICE, TEAM_LEAD, Principal

STAFF = (AGENT, TEAM_LEAD, INTEGRATION, SERVICE)


def can_submit(principal: Principal, org: str, requester_id: str) -> None:
    principal.require_org(org)
    if principal.has_any(*STAFF):
        return
    if principal.has_any(REQUESTER):
        if requester_id and requester_id != principal.subject:
            raise NotAllowed("a requester can only submit tickets for themselves (requester.id must be empty or yours)")
        return
    raise NotAllowed("submitting tickets needs the role requester, agent, team_lead or integration")


def can_see(principal: Principal, ticket: Ticket) -> None:
    """Hides other organisations' and other requesters' tickets as NOT_FOUND, so that their
    existence does not leak; a requester reading someone else's ticket is PERMISSION_DENIED."""
    if ticket.organization != principal.org:
        raise TicketNotFound(f"ticket {ticket.ticket_number} not found")
    if principal.has_any(*STAFF):
        return
    if principal.has_any(REQUESTER) and ticket.requester.id == principal.subject:
        return
    raise NotAllowed(f"ticket {ticket.ticket_number} belongs to another requester")


def can_act_as_requester(principal: Principal, ticket: Ticket, action: str) -> None:
    """Supplement, verify, rate: the requester themself or an integration acting for them."""
    can_see(principal, ticket)
    if principal.has_any(INTEGRATION, SERVICE):
        return
    if principal.has_any(REQUESTER) and ticket.requester.id == principal.subject:
        return
    raise NotAllowed(f"only the requester can {action}")


def can_cancel(principal: Principal, ticket: Ticket) -> None:
    can_see(principal, ticket)


def list_scope(principal: Principal, org: str, requester_id: str) -> str:
    """The requester filter to apply: requesters always list only their own tickets."""
    principal.require_org(org)
    if principal.has_any(*STAFF):
        return requester_id
    if principal.has_any(REQUESTER):
        if requester_id and requester_id != principal.subject:
            raise NotAllowed("a requester can only list their own tickets")
        return principal.subject
    raise NotAllowed("listing tickets needs the role requester, agent, team_lead or integration")
