"""The configuration in bpmn/notify/ loads cleanly and carries every notice the SOP asks for
(shared/SOP.md and issue #4): a rule for its event and a template in zh-CN and en."""

from __future__ import annotations

import pytest

from services.notify.domain.config import load_notify_config
from services.notify.domain.directory import FALLBACK_LOCALE
from tests.notify.story import NOTIFY_DIR, notify_files, shipped

#: notice → (the event that causes it, the template, who must get it)
SOP_NOTICES = {
    "receipt with ticket number and expected response time (§2)": ("ticket.classified", "receipt", "requester"),
    "information request (§2)": ("ticket.info_requested", "info_request", "requester"),
    "assignment (§4)": ("ticket.assigned", "assignment", "assignee"),
    "escalation (§6)": ("ticket.escalated", "escalation", "group"),
    "SLA warning (§5)": ("sla.warning", "sla_warning", "assignee"),
    "SLA breach (§5)": ("sla.breached", "sla_breach", "assignee"),
    "P0 progress report every 30 minutes (§5)": ("ticket.progress_due", "progress_report", "requester"),
    "change approval request (§7)": ("change.approval_requested", "approval_request", "group"),
    "change approval decision (§7)": ("change.decided", "approval_decision", "assignee"),
    "dual review request (§8)": ("review.requested", "review_request", "group"),
    "dual review decision (§8)": ("review.decided", "review_decision", "assignee"),
    "result notice (§9)": ("ticket.resolved", "result_notice", "requester"),
    "satisfaction survey request (§9)": ("ticket.survey_requested", "survey_request", "requester"),
    "revisit after a dissatisfied rating (§5, §9)": ("ticket.revisit_required", "revisit", "assignee"),
    "closure (§9)": ("ticket.closed", "closure", "requester"),
}


def test_the_shipped_configuration_loads() -> None:
    config = load_notify_config(notify_files())
    assert set(config.directory.orgs) == {"acme", "globex"}
    assert set(config.rules.orgs) == {"globex"}
    assert config.templates_for("acme") is config.templates


@pytest.mark.parametrize("notice", SOP_NOTICES)
def test_every_sop_notice_has_a_rule_and_both_languages(notice: str) -> None:
    event_type, template, recipient = SOP_NOTICES[notice]
    config = shipped()
    rules = config.rules.default.deliveries(event_type)
    matching = [d for d in rules if d.template == template and d.to == recipient]
    assert matching, f"{notice}: no rule sends '{template}' to {recipient} on {event_type}"
    if recipient in ("requester", "assignee"):
        assert {d.channel for d in matching} == {"email", "in_app"}, notice
    assert config.templates.catalog[template] == frozenset({FALLBACK_LOCALE, "en"}), notice
    for locale in (FALLBACK_LOCALE, "en"):
        assert (NOTIFY_DIR / "templates" / f"{template}.{locale}.txt.j2").is_file()


def test_every_organisation_of_the_directory_has_the_groups_the_rules_name() -> None:
    config = shipped()
    for org in config.directory.orgs:
        rules = config.rules.for_org(org)
        named = {d.group for deliveries in rules.events.values() for d in deliveries if d.group}
        assert named <= set(config.directory.org(org).groups), org


def test_no_secret_is_written_in_the_directory() -> None:
    for org in shipped().directory.orgs.values():
        for hook in org.webhooks.values():
            assert hook.kind != "dingtalk" or hook.url_env, hook.name
            assert "access_token" not in hook.url
            assert "key=" not in hook.url
