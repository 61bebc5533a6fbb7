"""Which task completions assign the ticket, and to whom (domain/assignment.py): pure, milliseconds."""

from __future__ import annotations

from services.workflow.domain.assignment import Assignment, assignment_made

ROUTED = {"team": "开发团队 Development", "candidate_group": "development"}


def test_a_form_naming_the_handler_assigns_the_ticket_with_its_team_and_co_handlers() -> None:
    made = assignment_made({"assignee": " agent-1 ", "co_handlers": "ops-1，agent-2、 ops-1\nagent-1"}, ROUTED)
    assert made == Assignment("开发团队 Development", "agent-1", ("ops-1", "agent-2"))


def test_taking_over_keeps_the_co_handlers_named_before() -> None:
    before = {**ROUTED, "assignee": "agent-1", "co_handlers": ["ops-1", "engineer-2"]}
    assert assignment_made({"assignee": "engineer-2", "tier2_response": "mine now"}, before) == Assignment(
        "开发团队 Development", "engineer-2", ("ops-1",)
    )


def test_forms_without_a_handler_assign_nothing() -> None:
    before = {**ROUTED, "assignee": "agent-1"}
    assert assignment_made({"diagnosis": "disk full"}, before) is None
    assert assignment_made({"assignee": "  "}, before) is None
    assert assignment_made({"assignee": 7}, before) is None


def test_a_ticket_never_routed_is_assigned_without_a_team() -> None:
    assert assignment_made({"assignee": "agent-1"}, {}) == Assignment("", "agent-1", ())
