"""The names templates see (built by `planning.template_variables`, checked by
`templates.load_template_set`): a template using any other name is rejected when it is loaded,
not when a notice is sent. Document changes in bpmn/notify/README.md."""

from __future__ import annotations

from typing import Final

TEMPLATE_VARIABLES: Final = frozenset(
    {
        "ticket",
        "event",
        "event_type",
        "event_id",
        "occurred_at",
        "actor",
        "recipient",
        "org",
        "names",
        "locale",
        "time_zone",
    }
)
#: Extra names of an HTML part: the rendered subject, and (in `_layout`) the text part as HTML.
HTML_VARIABLES: Final = frozenset({"subject", "body"})

#: The fields of the dict variables (`event` varies with the event type: see event.py).
FIELDS: Final = {
    "ticket": frozenset(
        {
            "number",
            "title",
            "url",
            "status",
            "priority",
            "category",
            "problem_type",
            "team",
            "tier",
            "requester_id",
            "requester_name",
            "vip",
            "submitted_at",
            "assignee",
            "assignee_name",
            "co_handler_names",
            "sla_targets",
            "expected_response",
            "business_time",
            "calendar",
            "task_name",
            "task_due_at",
            "last_agent_comment",
            "cause",
            "measures",
            "summary",
            "rating",
        }
    ),
    "actor": frozenset({"subject", "role", "name"}),
    "recipient": frozenset({"name", "address", "kind", "channel"}),
    "org": frozenset({"id", "name", "portal_url"}),
}
