"""The rules and directory files as an admin edits them: a good file reads as written, and a bad
one is rejected with every problem named by file, key path (entries counted from 1) and what to
do — the exact messages are asserted, because they are the interface."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from supportflow.events.v1 import events_pb2

from services.kit.events import EVENT_TYPES
from services.notify.domain.config import load_notify_config
from services.notify.domain.directory import parse_directory
from services.notify.domain.errors import RulesError
from services.notify.domain.event import DERIVED_FACTS, EVENT_FACTS
from services.notify.domain.rules import Condition, load_rule_book, parse_rules
from tests.notify.story import notify_files

ALL_EVENTS = ", ".join(sorted(EVENT_TYPES))
RECIPIENTS = "requester, assignee, co_handlers, task_assignee, candidate_groups, team, group, webhook"
DELIVERY_KEYS = "to, channel, template, locale, group, webhook, when, skip_actor"


def problems(text: str, parse: Any = parse_rules) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse(text)
    return [str(p) for p in caught.value.problems]


# -- rules: good ------------------------------------------------------------------------------------


def test_a_delivery_reads_as_written_one_per_channel() -> None:
    rules = parse_rules(
        """
        [[events."ticket.resolved"]]
        to = "requester"
        channel = ["email", "in_app"]
        template = "result_notice"

        [[events."sla.breached"]]
        to = "group"
        group = "team_lead"
        channel = "email"
        template = "sla_breach"
        locale = "en"
        when = { priority = ["P0", "P1"], clock = { not = "assign" } }
        skip_actor = true
        """
    )
    email, in_app = rules.deliveries("ticket.resolved")
    assert (email.to, email.channel, email.template) == ("requester", "email", "result_notice")
    assert in_app.channel == "in_app"
    assert email.source == 'rules.toml: events."ticket.resolved"[1]'
    (breach,) = rules.deliveries("sla.breached")
    assert (breach.group, breach.locale, breach.skip_actor) == ("team_lead", "en", True)
    assert breach.when == {"priority": Condition(("P0", "P1")), "clock": Condition(("assign",), negate=True)}
    assert breach.matches({"priority": "P1", "clock": "resolve"})
    assert not breach.matches({"priority": "P2", "clock": "resolve"})
    assert not breach.matches({"priority": "P0", "clock": "assign"})
    assert rules.deliveries("ticket.closed") == ()


def test_a_flag_condition_never_matches_a_number() -> None:
    rules = parse_rules(
        '[[events."change.decided"]]\nto = "assignee"\nchannel = "email"\ntemplate = "x"\nwhen = { approved = true }'
    )
    (rule,) = rules.deliveries("change.decided")
    assert rule.matches({"approved": True})
    assert not rule.matches({"approved": 1})  # True == 1 in Python; not here
    assert not rule.matches({})


def test_an_organisation_replaces_the_events_it_lists_and_an_empty_list_turns_one_off() -> None:
    default = """
        [[events."ticket.resolved"]]
        to = "requester"
        channel = "email"
        template = "result_notice"

        [[events."task.created"]]
        to = "candidate_groups"
        channel = "in_app"
        template = "new_task"
    """
    override = """
        [events]
        "task.created" = []

        [[events."ticket.resolved"]]
        to = "webhook"
        webhook = "ops"
        channel = "webhook"
        template = "result_notice"
    """
    book = load_rule_book({"rules.toml": default, "orgs/globex/rules.toml": override})
    assert [d.to for d in book.for_org("acme").deliveries("ticket.resolved")] == ["requester"]
    assert [d.to for d in book.for_org("globex").deliveries("ticket.resolved")] == ["webhook"]
    assert book.for_org("globex").deliveries("task.created") == ()
    assert len(book.for_org("acme").deliveries("task.created")) == 1


# -- rules: bad ---------------------------------------------------------------------------------------


def test_a_bad_channel_is_named_with_its_key_path() -> None:
    text = '[[events."ticket.resolved"]]\nto = "requester"\nchannel = "email"\ntemplate = "result_notice"\n' * 1
    text += '[[events."ticket.resolved"]]\nto = "requester"\nchannel = "sms"\ntemplate = "result_notice"\n'
    assert problems(text) == [
        """rules.toml: events."ticket.resolved"[2].channel: 'sms' is not a channel (email, webhook, in_app)"""
    ]


def test_every_problem_of_a_rules_file_is_reported_at_once() -> None:
    text = """
        [[events."ticket.resolved"]]
        to = "requester"
        channel = ["email", "sms", "email"]
        template = "result_notice"

        [[events."ticket.resolved"]]
        to = "requestor"
        channel = "emial"
        template = "Result Notice"

        [[events."ticket.resolvd"]]
        to = "requester"
        channel = "email"
        template = "x"

        [[events."sla.warning"]]
        to = "group"
        channel = "email"
        template = "sla_warning"
        when = { clok = "resolve", priority = "P5", clock = { is = "assign" } }

        [[events."sla.breached"]]
        to = "assignee"
        channel = "webhook"
        template = "sla_breach"
        group = "team_lead"
        skip_actor = "yes"
        locale = "EN_us"
        colour = "red"

        [[events."ticket.closed"]]
        to = "webhook"
        channel = ["in_app"]
        template = "closure"

        [[events."change.decided"]]
        to = "assignee"
        when = { approved = "yes", round = [1, "2"] }
    """
    assert problems(text) == [
        "rules.toml: events.\"ticket.resolved\"[1].channel[2]: 'sms' is not a channel (email, webhook, in_app)",
        "rules.toml: events.\"ticket.resolved\"[1].channel[3]: 'email' is listed twice",
        "rules.toml: events.\"ticket.resolved\"[2].to: 'requestor' is not a recipient (did you mean 'requester'?)"
        f" ({RECIPIENTS})",
        "rules.toml: events.\"ticket.resolved\"[2].channel: 'emial' is not a channel (did you mean 'email'?)"
        " (email, webhook, in_app)",
        "rules.toml: events.\"ticket.resolved\"[2].template: 'Result Notice' is not a template name:"
        " lower-case letters, digits and '_', e.g. \"receipt\"",
        "rules.toml: events.\"ticket.resolvd\": 'ticket.resolvd' is not an event type"
        f" (did you mean 'ticket.resolved'?) (events.proto has: {ALL_EVENTS})",
        'rules.toml: events."sla.warning"[1]: to = "group" needs group = "<name in directory.toml>"',
        "rules.toml: events.\"sla.warning\"[1].when.clok: 'clok' is not a fact of sla.warning"
        " (did you mean 'clock'?) (it has: actor_role, clock, priority)",
        "rules.toml: events.\"sla.warning\"[1].when.priority: 'P5' is not a priority (P0, P1, P2, P3)",
        'rules.toml: events."sla.warning"[1].when.clock: a table here is { not = <value or list> }:'
        " the fact is none of them",
        f'rules.toml: events."sla.breached"[1].colour: unknown key (allowed here: {DELIVERY_KEYS})',
        'rules.toml: events."sla.breached"[1].group: only with to = "group"',
        'rules.toml: events."sla.breached"[1].channel: a person has no webhook:'
        ' use email or in_app for to = "assignee"',
        """rules.toml: events."sla.breached"[1].locale: 'EN_us' is not a locale such as "zh-CN" or "en\"""",
        "rules.toml: events.\"sla.breached\"[1].skip_actor: expected true or false, got 'yes'",
        'rules.toml: events."ticket.closed"[1]: to = "webhook" needs webhook = "<name in directory.toml>"',
        'rules.toml: events."ticket.closed"[1].channel: to = "webhook" goes by channel = "webhook" only',
        "rules.toml: events.\"change.decided\"[1]: missing 'channel'",
        "rules.toml: events.\"change.decided\"[1]: missing 'template'",
        "rules.toml: events.\"change.decided\"[1].when.approved: expected true or false, got 'yes'",
        "rules.toml: events.\"change.decided\"[1].when.round: expected a number, got '2'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('events = "all"', 'rules.toml: events: expected tables: [[events."ticket.resolved"]]'),
        (
            'events."ticket.closed" = "email"',
            'rules.toml: events."ticket.closed": expected a list of deliveries: [[events."ticket.closed"]] blocks,'
            " or [] for none",
        ),
        ("notify = true", "rules.toml: notify: unknown key (allowed here: events)"),
        (
            '[[events."ticket.closed"]]\nto = "requester"\nchannel = []\ntemplate = "closure"',
            'rules.toml: events."ticket.closed"[1].channel: empty: name at least one channel (email, webhook, in_app)',
        ),
        (
            '[[events."ticket.closed"]]\nto = "requester"\nchannel = "email"\ntemplate = "closure"\nwebhook = "ops"',
            'rules.toml: events."ticket.closed"[1].webhook: only with to = "webhook"',
        ),
        (
            # Whoever claimed the approval is not who hears its decision: the handler is.
            '[[events."change.decided"]]\nto = "task_assignee"\nchannel = "email"\ntemplate = "approval_decision"',
            'rules.toml: events."change.decided"[1].to: change.decided names no task\'s assignee: task_assignee is'
            ' for task.created and task.claimed (the ticket\'s handler is to = "assignee")',
        ),
    ],
)
def test_misshapen_rules_files(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_a_toml_syntax_error_names_the_line() -> None:
    (message,) = problems('[[events."ticket.closed"]]\nto "requester"\n')
    assert message.startswith("rules.toml: not valid TOML: ")
    assert "line 2" in message


def test_an_organisation_file_is_named_in_its_messages() -> None:
    with pytest.raises(RulesError) as caught:
        load_rule_book({"rules.toml": "", "orgs/globex/rules.toml": '[[events."ticket.closed"]]\nto = "boss"'})
    assert [str(p) for p in caught.value.problems] == [
        "orgs/globex/rules.toml: events.\"ticket.closed\"[1]: missing 'channel'",
        "orgs/globex/rules.toml: events.\"ticket.closed\"[1]: missing 'template'",
        f"orgs/globex/rules.toml: events.\"ticket.closed\"[1].to: 'boss' is not a recipient ({RECIPIENTS})",
    ]


def test_a_missing_default_rules_file_is_a_problem() -> None:
    with pytest.raises(RulesError) as caught:
        load_rule_book({})
    assert [str(p) for p in caught.value.problems] == ["rules.toml: missing: the default rules are required"]


# -- facts a rule may test ----------------------------------------------------------------------------

_KINDS = {
    FieldDescriptor.TYPE_BOOL: "flag",
    FieldDescriptor.TYPE_STRING: "text",
    FieldDescriptor.TYPE_INT32: "number",
    FieldDescriptor.TYPE_INT64: "number",
}


def test_the_facts_rules_may_test_are_real_payload_fields_of_every_event_type() -> None:
    assert set(EVENT_FACTS) == set(EVENT_TYPES)
    for event_type, facts in EVENT_FACTS.items():
        payload = events_pb2.Event.DESCRIPTOR.fields_by_name[EVENT_TYPES[event_type]].message_type
        assert payload is not None
        for name, kind in facts.items():
            if name in DERIVED_FACTS:
                continue
            field = payload.fields_by_name.get(name)
            assert field is not None, f"{event_type} has no field {name}"
            assert not field.is_repeated
            if field.type == FieldDescriptor.TYPE_ENUM:
                assert field.enum_type is not None
                assert kind == field.enum_type.name.lower(), (event_type, name)
            else:
                assert kind == _KINDS[field.type], (event_type, name)


# -- directory ----------------------------------------------------------------------------------------

GOOD_DIRECTORY = """
[defaults]
mail_from = "技术支持 <support@example.com>"

[orgs.acme]
name = "ACME"
locale = "en"
portal_url = "https://support.acme.example/t/{ticket}"

[orgs.acme.people.agent-1]
name = "王芳"
email = "wang.fang@acme.example"
locale = "zh-CN"

[orgs.acme.people.lead-1]

[orgs.acme.groups.tier1]
members = ["agent-1", "lead-1", "agent-1"]
team = "服务台 Service desk"
webhook = "desk"

[orgs.acme.webhooks.desk]
kind = "dingtalk"
url_env = "NOTIFY_DESK_URL"
secret_env = "NOTIFY_DESK_SECRET"
"""


def test_a_directory_reads_as_written_and_unlisted_organisations_get_the_defaults() -> None:
    directory = parse_directory(GOOD_DIRECTORY)
    acme = directory.org("acme")
    assert (acme.name, acme.locale, acme.time_zone, acme.mail_from) == (
        "ACME",
        "en",
        "Asia/Shanghai",
        "技术支持 <support@example.com>",
    )
    assert acme.ticket_url("TS20231027000001") == "https://support.acme.example/t/TS20231027000001"
    assert acme.people["agent-1"].email == "wang.fang@acme.example"
    assert acme.people["lead-1"].name == "lead-1"  # no name: the id
    assert acme.groups["tier1"].members == ("agent-1", "lead-1")
    assert [g.id for g in acme.team_groups("服务台 Service desk")] == ["tier1"]
    desk = acme.webhooks["desk"]
    assert (desk.kind, desk.url, desk.url_env, desk.secret_env) == (
        "dingtalk",
        "",
        "NOTIFY_DESK_URL",
        "NOTIFY_DESK_SECRET",
    )
    other = directory.org("initech")
    assert (other.id, other.locale, other.mail_from, dict(other.people)) == (
        "initech",
        "zh-CN",
        "技术支持 <support@example.com>",
        {},
    )


def test_robots_take_twenty_messages_a_minute_unless_the_directory_says_otherwise() -> None:
    directory = parse_directory("""
        [defaults]
        mail_from = "技术支持 <support@example.com>"

        [orgs.acme.webhooks.ding]
        kind = "dingtalk"
        url_env = "NOTIFY_DING_URL"

        [orgs.acme.webhooks.wecom]
        kind = "wecom"
        url_env = "NOTIFY_WECOM_URL"

        [orgs.acme.webhooks.own]
        kind = "generic"
        url = "https://hooks.acme.example/in"

        [orgs.acme.webhooks.busy-own]
        kind = "generic"
        url = "https://hooks.acme.example/busy"
        max_per_minute = 60

        [orgs.acme.webhooks.unlimited-ding]
        kind = "dingtalk"
        url_env = "NOTIFY_DING2_URL"
        max_per_minute = 0
    """)
    limits = {name: hook.max_per_minute for name, hook in directory.org("acme").webhooks.items()}
    assert limits == {"ding": 20, "wecom": 20, "own": 0, "busy-own": 60, "unlimited-ding": 0}


def test_every_problem_of_a_directory_is_reported_at_once() -> None:
    text = """
        [defaults]
        locale = "english"
        time_zone = "Mars/Olympus"

        [orgs.acme]
        portal_url = "https://x.example/tickets"
        colour = 1

        [orgs.acme.people.agent-1]
        email = "not-an-address"

        [orgs.acme.groups.tier1]
        members = ["agent-1", "agent-2"]
        webhook = "ops-robot"

        [orgs.acme.webhooks.ops]
        kind = "slack"
        url = "https://x.example/hook"

        [orgs.acme.webhooks.desk]
        kind = "dingtalk"
        url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
        max_per_minute = "20"

        [orgs.acme.webhooks.dev]
        kind = "wecom"
        url_env = "dev url"
        secret_env = "NOTIFY_DEV_SECRET"

        [orgs.acme.webhooks.both]
        kind = "generic"
        url = "ftp://x.example"
        url_env = "NOTIFY_BOTH_URL"
    """
    assert problems(text, parse_directory) == [
        """directory.toml: defaults.locale: 'english' is not a locale such as "zh-CN" or "en\"""",
        """directory.toml: defaults.time_zone: 'Mars/Olympus' is not a known time zone (e.g. "Asia/Shanghai")""",
        "directory.toml: defaults.mail_from: required: the From: of notify's e-mails,"
        ' e.g. "技术支持 <support@example.com>"',
        "directory.toml: orgs.acme.colour: unknown key"
        " (allowed here: name, locale, time_zone, mail_from, reply_to, portal_url, people, groups, webhooks)",
        "directory.toml: orgs.acme.portal_url: 'https://x.example/tickets': expected an http(s) URL with {ticket}"
        ' where the number goes, e.g. "https://support.example.com/tickets/{ticket}"',
        """directory.toml: orgs.acme.people.agent-1.email: 'not-an-address' is not an e-mail address"""
        ''' such as "li.lei@example.com"''',
        "directory.toml: orgs.acme.webhooks.ops.kind: 'slack' is not a webhook kind (generic, dingtalk, wecom)",
        "directory.toml: orgs.acme.webhooks.desk.url: the URL carries a credential (access_token=…):"
        " put the URL in an environment variable and name it with url_env instead",
        "directory.toml: orgs.acme.webhooks.desk.max_per_minute: '20' is not a whole number from 0 (no limit) to 10000",
        """directory.toml: orgs.acme.webhooks.dev.url_env: 'dev url' is not an environment variable name"""
        ''' such as "NOTIFY_OPS_ROBOT_SECRET"''',
        "directory.toml: orgs.acme.webhooks.dev.secret_env: WeCom robots are not signed (the key is in the URL):"
        " remove it",
        "directory.toml: orgs.acme.webhooks.both: give exactly one of url and url_env"
        " (the name of the environment variable holding it)",
        "directory.toml: orgs.acme.webhooks.both.url: 'ftp://x.example' is not an http(s) URL",
        "directory.toml: orgs.acme.groups.tier1.members[2]: 'agent-2' is not a person of this organisation"
        " (did you mean 'agent-1'?): add it under people first",
        "directory.toml: orgs.acme.groups.tier1.webhook: 'ops-robot' is not a webhook of this organisation"
        " (known: both, desk, dev)",
    ]


# -- the whole configuration, cross-checked -----------------------------------------------------------


def test_a_configuration_is_rejected_whole_with_every_cross_file_problem() -> None:
    files = notify_files()
    rules = files["rules.toml"].decode()
    rules = rules.replace('template = "result_notice"', 'template = "result_notise"', 1)
    rules = rules.replace('group = "change_manager"', 'group = "change_managers"', 1)
    files["rules.toml"] = rules.encode()
    files["orgs/initech/rules.toml"] = (
        b'[[events."ticket.closed"]]\nto = "requester"\nchannel = "email"\ntemplate = "closure"\nlocale = "fr"\n'
    )
    files["templates/closure.en.html.j2"] = b"<p>{{ ticket.nubmer }}</p>"
    files["notes.txt"] = b"todo"
    missing_group = [
        """rules.toml: events."change.approval_requested"[1].group: organisation 'acme' has no group"""
        " 'change_managers' in directory.toml (did you mean 'change_manager'?) (has: administrators,"
        " change_manager, development, expert, operations, product, reviewer, service_desk, team_lead, tier1,"
        " tier2)",
        """rules.toml: events."change.approval_requested"[1].group: organisation 'globex' has no group"""
        " 'change_managers' in directory.toml (did you mean 'change_manager'?) (has: change_manager, expert,"
        " operations, reviewer, service_desk, team_lead, tier1, tier2)",
    ]
    unexpected = (
        "notes.txt: unexpected file: this folder holds rules.toml, directory.toml, templates/*.j2"
        " and orgs/<org>/rules.toml, orgs/<org>/templates/*.j2"
    )
    not_listed = "orgs/initech/rules.toml: organisation 'initech' is not in directory.toml: add [orgs.initech]"
    with pytest.raises(RulesError) as caught:
        load_notify_config(files)
    assert [str(p) for p in caught.value.problems] == [
        unexpected,
        "templates/closure.en.html.j2: line 1: 'ticket' has no field 'nubmer' (did you mean 'number'?)"
        " (it has: assignee, assignee_name, business_time, calendar, category, cause, co_handler_names,"
        " expected_response, last_agent_comment, measures, number, priority, problem_type, rating, requester_id,"
        " requester_name, sla_targets, status, submitted_at, summary, task_due_at, task_name, team, tier, title,"
        " url, vip)",
        not_listed,
        *missing_group,
    ]
    # With the templates fixed, the rules are checked against them too.
    del files["templates/closure.en.html.j2"]
    with pytest.raises(RulesError) as caught:
        load_notify_config(files)
    assert [str(p) for p in caught.value.problems] == [
        unexpected,
        """rules.toml: events."ticket.resolved"[1].template: there is no template 'result_notise'"""
        " (did you mean 'result_notice'?): add templates/result_notise.zh-CN.txt.j2 (known: approval_decision,"
        " approval_request, assignment, cancelled, closure, escalation, info_request, new_task, progress_reminder,"
        " progress_report, receipt, reclassified, requester_update, result_notice, review_decision, review_request,"
        " revisit, sla_breach, sla_warning, survey_request)",
        """orgs/initech/rules.toml: events."ticket.closed"[1].locale: template 'closure' has no 'fr' version"""
        " (has: en, zh-CN): add templates/closure.fr.txt.j2",
        not_listed,
        *missing_group,
    ]
    assert str(caught.value).startswith("notification configuration rejected (6 problems):\n  notes.txt:")
