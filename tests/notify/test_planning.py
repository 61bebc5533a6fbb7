"""Who hears about what, from the shipped rules and directory: the right people on the right
channels in their language, each once per event, never twice for a redelivered event; and what
notify remembers of a ticket between events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2 as ev

from services.kit.events import new_event
from services.notify.adapters.event_codec import decode
from services.notify.domain.event import TicketEvent
from services.notify.domain.planning import facts, notice_key, plan
from services.notify.domain.rules import RuleBook, parse_rules
from services.notify.domain.ticket_context import TicketContext, apply
from services.notify.domain.variables import FIELDS, TEMPLATE_VARIABLES
from tests.notify.story import (
    AGENT,
    CM,
    LEAD,
    NUMBER,
    REQUESTER,
    T0,
    TITLE,
    classified,
    envelope,
    lifecycle,
    shipped,
    submitted,
)


def context(*events: TicketEvent) -> TicketContext:
    ctx = None
    for event in events:
        ctx = apply(ctx, event)
    assert ctx is not None
    return ctx


def who(event: TicketEvent, ctx: TicketContext, unresolved: list[str] | None = None) -> list[tuple[str, str, str]]:
    cfg = shipped()
    told = unresolved if unresolved is not None else []
    return [
        (n.channel, n.recipient, n.template)
        for n in plan(event, ctx, cfg.rules, cfg.directory, on_unresolved=told.append)
    ]


ASSIGNED = envelope(
    ev.TicketAssigned(team="开发团队 Development", assignee="agent-1", co_handlers=["engineer-2"]),
    minutes=46,
    actor=LEAD,
)


# -- recipients -------------------------------------------------------------------------------------------


def test_the_receipt_goes_to_the_requester_by_email_and_in_app() -> None:
    event = classified()
    assert who(event, context(submitted(), event)) == [
        ("email", "li.lei@acme.example", "receipt"),
        ("in_app", "E1001", "receipt"),
    ]


def test_a_corrected_priority_tells_the_requester_the_new_times_not_a_second_receipt() -> None:
    first, corrected = classified(), classified(types_pb2.PRIORITY_P2, minutes=50)
    ctx = context(submitted(), first, corrected)
    assert facts(corrected, ctx)["reclassified"] is True
    assert facts(first, ctx)["reclassified"] is False
    assert [t for _, _, t in who(corrected, ctx)] == ["reclassified", "reclassified"]


def test_a_p0_also_lands_in_the_routed_teams_robot() -> None:
    event = classified(types_pb2.PRIORITY_P0)
    notices = plan(event, context(submitted(), event), shipped().rules, shipped().directory)
    robot = notices[-1]
    assert (robot.channel, robot.recipient, robot.template) == ("webhook", "acme-dev-wecom", "new_task")
    assert robot.webhook is not None
    assert robot.webhook.kind == "wecom"
    assert robot.webhook.url_env == "NOTIFY_ACME_DEV_WECOM_URL"


def test_assignment_reaches_the_handler_and_co_handlers_each_in_their_language() -> None:
    ctx = context(submitted(), classified(), ASSIGNED)
    assert who(ASSIGNED, ctx) == [
        ("email", "wang.fang@acme.example", "assignment"),
        ("in_app", "agent-1", "assignment"),
        ("email", "zhang.wei@acme.example", "assignment"),
        ("in_app", "engineer-2", "assignment"),
    ]


def test_whoever_assigns_a_ticket_to_themselves_is_not_told_about_it() -> None:
    self_assigned = envelope(ev.TicketAssigned(team="x", assignee="lead-1"), actor=LEAD)
    assert who(self_assigned, context(submitted(), self_assigned)) == []


def test_a_queued_task_goes_to_its_groups_and_an_assigned_one_to_its_assignee_only() -> None:
    queued = envelope(ev.TaskCreated(task_id="t", name="Assign", candidate_groups=["development", "team_lead"]))
    assert who(queued, context(submitted(), queued)) == [
        ("in_app", "engineer-2", "new_task"),
        ("in_app", "lead-1", "new_task"),
    ]
    # The ticket has a handler already; a tier-2 task is not theirs.
    tier2 = envelope(ev.TaskCreated(task_id="t2", name="Respond", candidate_groups=["tier2"]))
    assert who(tier2, context(submitted(), ASSIGNED, tier2)) == [("in_app", "engineer-2", "new_task")]
    mine = envelope(ev.TaskCreated(task_id="t3", name="Implement", candidate_groups=["tier1"], assignee="agent-1"))
    assert who(mine, context(submitted(), ASSIGNED, mine)) == [("in_app", "agent-1", "new_task")]
    # A task made for someone else than the handler (a bundle naming the reviewer) goes to them,
    # and they do not become the ticket's handler.
    theirs = envelope(ev.TaskCreated(task_id="t4", name="Review", candidate_groups=["reviewer"], assignee="lead-1"))
    ctx = context(submitted(), ASSIGNED, theirs)
    assert who(theirs, ctx) == [("in_app", "lead-1", "new_task")]
    assert (ctx.assignee, ctx.co_handlers) == ("agent-1", ("engineer-2",))


def test_claiming_a_task_never_makes_the_claimer_the_handler() -> None:
    # agent-1 handles the ticket; the change manager claims the approval, the reviewer the review.
    requested = envelope(ev.ChangeApprovalRequested(task_id="t5", author="agent-1", round=1), minutes=50)
    approval_claimed = envelope(
        ev.TaskClaimed(task_id="t5", element_id="Task_ApproveChange", assignee="cm-1"), minutes=51, actor=CM
    )
    decided = envelope(ev.ChangeDecided(approved=False, approver="cm-1", comment="回滚方案不全", round=1), minutes=52)
    review = envelope(ev.ReviewRequested(task_id="t7", operation="data modification", performer="agent-1"))
    review_claimed = envelope(
        ev.TaskClaimed(task_id="t7", element_id="Task_ReviewKeyOperation", assignee="lead-1"), minutes=53, actor=LEAD
    )
    reviewed = envelope(ev.ReviewDecided(approved=True, reviewer="lead-1"), minutes=54)
    ctx = context(submitted(), classified(), ASSIGNED, requested, approval_claimed, decided)
    assert (ctx.assignee, ctx.co_handlers) == ("agent-1", ("engineer-2",))
    assert who(approval_claimed, ctx) == [], "nobody is told of a claim unless a rule says so"
    assert who(decided, ctx) == [
        ("email", "wang.fang@acme.example", "approval_decision"),
        ("in_app", "agent-1", "approval_decision"),
    ], "the handler hears the decision, not the change manager who claimed the approval"
    ctx = context(submitted(), classified(), ASSIGNED, review, review_claimed, reviewed)
    assert who(reviewed, ctx) == [
        ("email", "wang.fang@acme.example", "review_decision"),
        ("in_app", "agent-1", "review_decision"),
    ]
    assert ctx.assignee == "agent-1"
    # Before any assignment a claim names no handler either: the dispatcher taking Assign ticket.
    dispatcher = envelope(ev.TaskClaimed(task_id="t1", element_id="Task_AssignTicket", assignee="lead-1"), actor=LEAD)
    early = context(submitted(), classified(), dispatcher)
    assert (early.assignee, early.status) == ("", "accepted")
    unresolved: list[str] = []
    assert who(envelope(ev.SlaBreached(clock="assign")), early, unresolved)[:2] == [
        ("email", "chen.jing@acme.example", "sla_breach"),
        ("in_app", "lead-1", "sla_breach"),
    ]
    assert unresolved[0].endswith("the ticket has no assignee yet")


def test_a_claim_reaches_its_claimer_only_where_a_rule_says_so() -> None:
    claim = envelope(ev.TaskClaimed(task_id="t5", element_id="Task_ApproveChange", assignee="cm-1"), actor=CM)
    ctx = context(submitted(), classified(), ASSIGNED, claim)
    rules = RuleBook(
        parse_rules('[[events."task.claimed"]]\nto = "task_assignee"\nchannel = "in_app"\ntemplate = "new_task"')
    )
    assert [(n.channel, n.recipient) for n in plan(claim, ctx, rules, shipped().directory)] == [("in_app", "cm-1")]
    assert ctx.assignee == "agent-1"


def test_the_status_follows_the_handler_not_the_claims() -> None:
    # SOP §1 as intake shows it: accepted once classified and when the handler is named, in
    # progress once someone works on a ticket that has its handler.
    claim = envelope(ev.TaskClaimed(task_id="t1", element_id="Task_AssignTicket", assignee="lead-1"), actor=LEAD)
    done = envelope(ev.TaskCompleted(task_id="t1", element_id="Task_AssignTicket", completed_by="lead-1"), actor=LEAD)
    diagnosed = envelope(
        ev.TaskCompleted(task_id="t2", element_id="Task_Diagnose", completed_by="agent-1"), actor=AGENT
    )
    held = envelope(ev.TicketInfoRequested(missing_info=["environment.software_version"]))
    steps = [submitted(), classified(), claim, done, ASSIGNED, diagnosed, ASSIGNED]
    statuses = []
    ctx: TicketContext | None = None
    for event in steps:
        ctx = apply(ctx, event)
        statuses.append(ctx.status)
    assert statuses == ["pending", "accepted", "accepted", "accepted", "accepted", "in_progress", "in_progress"]
    assert context(submitted(), classified(), held, ASSIGNED).status == "accepted", "the assignment ends the hold"


def test_the_status_in_a_notice_is_the_one_the_portal_shows() -> None:
    """Where notify used to keep its own status and differ from intake's read model (GetTicket)."""
    diagnosed = envelope(
        ev.TaskCompleted(task_id="t2", element_id="Task_Diagnose", completed_by="agent-1"), actor=AGENT
    )
    in_progress = (submitted(), classified(), ASSIGNED, diagnosed)
    reminder = envelope(ev.TicketInfoRequested(missing_info=["log"], reminder=True))
    resolved = envelope(ev.TicketResolved(resolved_by="agent-1", summary="fixed"), actor=AGENT)
    verified = envelope(ev.TicketVerified(accepted=True), actor=REQUESTER)
    revisit = envelope(ev.TicketRevisitRequired(task_id="t9", rating_comment="太慢了"))
    closed = envelope(ev.TicketClosed(outcome="completed"))
    held = envelope(ev.TicketInfoRequested(missing_info=["log", "environment.software_version"]))
    partly = envelope(ev.TicketSupplemented(missing_info=["log"]), actor=REQUESTER)

    # An information reminder while the ticket is handled does not put it back on hold.
    assert context(*in_progress, reminder).status == "in_progress"
    # A dissatisfied rating's revisit (SOP §9) takes a completed ticket back into handling.
    assert context(*in_progress, resolved, verified, revisit).status == "in_progress"
    # A late event does not reopen a closed ticket.
    assert context(*in_progress, closed, resolved).status == "closed"
    # Whatever the requester supplied ends the hold (SOP §2): the process decides what is still missing.
    assert context(submitted(), classified(), held, partly).status == "accepted"
    assert context(submitted(), held, partly).status == "pending"


def test_one_notice_per_person_and_channel_even_when_two_rules_reach_them() -> None:
    # lead-1 handles the ticket and is a team lead: the breach reaches them by two rules.
    lead_handles = envelope(ev.TicketAssigned(team="开发团队 Development", assignee="lead-1"), actor=AGENT)
    breach = envelope(ev.SlaBreached(clock="resolve"))
    planned = who(breach, context(submitted(), classified(), lead_handles, breach))
    assert planned == [
        ("email", "chen.jing@acme.example", "sla_breach"),
        ("in_app", "lead-1", "sla_breach"),
        ("webhook", "acme-dev-wecom", "sla_breach"),
    ]


def test_rules_follow_the_facts_of_the_event() -> None:
    ctx = context(submitted(), classified(), ASSIGNED)
    to_tier2 = envelope(ev.TicketEscalated(from_tier="tier1", to_tier="tier2", automatic=False))
    assert [r for _, r, _ in who(to_tier2, ctx)] == ["zhang.wei@acme.example", "engineer-2"]
    automatic = envelope(ev.TicketEscalated(from_tier="tier2", to_tier="expert", automatic=True))
    assert [r for _, r, _ in who(automatic, ctx)] == ["zhang.wei@acme.example", "engineer-2", "chen.jing@acme.example"]
    assign_clock = envelope(ev.SlaWarning(clock="assign", remaining_seconds=300))
    queue = envelope(ev.TaskCreated(task_id="t", candidate_groups=["development"]))
    assert who(assign_clock, context(submitted(), queue)) == [("in_app", "engineer-2", "sla_warning")]
    respond_clock = envelope(ev.SlaWarning(clock="respond", remaining_seconds=300))
    assert [r for _, r, _ in who(respond_clock, ctx)] == ["wang.fang@acme.example", "agent-1"]
    agent_comment = envelope(ev.TicketCommented(body="在查"), actor=AGENT)
    assert who(agent_comment, ctx) == []
    passed = envelope(ev.TicketVerified(accepted=True))
    assert who(passed, ctx) == []


def test_each_person_reads_in_their_own_locale() -> None:
    ctx = context(submitted(), classified(), ASSIGNED)
    request = envelope(ev.ChangeApprovalRequested(task_id="t", author="agent-1", round=1))
    (email, in_app) = plan(request, ctx, shipped().rules, shipped().directory)
    assert (email.recipient, email.locale, in_app.locale) == ("maria.schmidt@acme.example", "en", "en")
    globex = context(submitted(org="globex"), envelope(ev.TicketResolved(cause="c"), org="globex"))
    (notice, _) = plan(
        envelope(ev.TicketResolved(cause="c"), org="globex"), globex, shipped().rules, shipped().directory
    )
    assert notice.locale == "en"


def test_an_organisation_override_changes_only_its_events() -> None:
    queued = envelope(ev.TaskCreated(task_id="t", candidate_groups=["tier1"]), org="globex")
    assert who(queued, context(submitted(org="globex"), queued)) == []
    assigned = envelope(ev.TicketAssigned(team="x", assignee="gx-agent"), org="globex", actor=LEAD)
    breach = envelope(ev.SlaBreached(clock="resolve"), org="globex")
    ctx = context(submitted(org="globex"), classified(types_pb2.PRIORITY_P2), assigned, breach)
    assert who(breach, ctx) == [
        ("email", "hank@globex.example", "sla_breach"),
        ("email", "frank@globex.example", "sla_breach"),
        ("webhook", "globex-ops", "sla_breach"),
    ]
    assert [c for c, _, _ in who(assigned, ctx)] == ["email", "in_app"]  # not overridden


def test_a_rule_that_reaches_nobody_says_why() -> None:
    unresolved: list[str] = []
    unknown_person = envelope(ev.TicketAssigned(team="x", assignee="temp-9"), actor=LEAD)
    ctx = context(submitted(), unknown_person)
    # No e-mail for someone the directory does not know; the in-app inbox needs only the id.
    assert who(unknown_person, ctx, unresolved) == [("in_app", "temp-9", "assignment")]
    assert unresolved == [
        f"ticket.assigned {NUMBER}: rules.toml: events.\"ticket.assigned\"[1]: 'temp-9' has no e-mail in"
        " directory.toml (orgs.acme.people)"
    ]
    unresolved.clear()
    breach = envelope(ev.SlaBreached(clock="respond"))
    ops = envelope(ev.TicketClassified(priority=types_pb2.PRIORITY_P1, team="服务台 Service desk"))
    assert ("webhook", "acme-ops-dingtalk", "sla_breach") not in who(
        breach, context(submitted(), ops, breach), unresolved
    )
    assert unresolved[-1].endswith("group 'service_desk' has no webhook in directory.toml")


def test_an_organisation_missing_from_the_directory_still_tells_its_requester() -> None:
    unresolved: list[str] = []
    event = envelope(ev.TicketResolved(cause="c"), org="initech")
    ctx = context(submitted(org="initech"), event)
    assert who(event, ctx, unresolved) == [
        ("email", "li.lei@acme.example", "result_notice"),
        ("in_app", "E1001", "result_notice"),
    ]
    (notice, _) = plan(event, ctx, shipped().rules, shipped().directory)
    assert notice.locale == "zh-CN"
    assert notice.variables["org"] == {"id": "initech", "name": "initech", "portal_url": ""}


# -- exactly once ------------------------------------------------------------------------------------------


def test_a_redelivered_event_plans_the_same_notices_with_the_same_keys() -> None:
    pb = new_event(
        payload=ev.TicketResolved(resolved_by="agent-1", cause="c", measures="m"),
        org="acme",
        ticket_number=NUMBER,
        producer="workflow",
        actor_subject="agent-1",
        actor_role="agent",
        occurred_at=T0,
    )
    first, again = decode(pb), decode(events_pb2_copy(pb))
    ctx = context(submitted(), classified(), ASSIGNED)
    after_first = apply(ctx, first)
    after_again = apply(after_first, again)  # the store already holds the first delivery's context
    assert after_again == after_first
    cfg = shipped()
    planned_first = plan(first, after_first, cfg.rules, cfg.directory)
    planned_again = plan(again, after_again, cfg.rules, cfg.directory)
    assert planned_first == planned_again
    assert [n.notice_key for n in planned_first] == [
        notice_key(pb.event_id, "li.lei@acme.example", "email"),
        notice_key(pb.event_id, "E1001", "in_app"),
    ]
    assert len({n.notice_key for n in planned_first}) == 2


def events_pb2_copy(pb: ev.Event) -> ev.Event:
    copy = ev.Event()
    copy.ParseFromString(pb.SerializeToString())
    return copy


def test_notice_keys_differ_by_event_recipient_and_channel_only() -> None:
    key = notice_key("e1", "Li.Lei@ACME.example", "email")
    assert key == notice_key("e1", "li.lei@acme.example ", "email")  # addresses compare case-insensitively
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert (
        len({key, notice_key("e2", "li.lei@acme.example", "email"), notice_key("e1", "x@acme.example", "email")}) == 3
    )
    assert notice_key("e1", "E1001", "in_app") != notice_key("e1", "e1001", "in_app")  # ids are exact
    assert notice_key("e1", "ops", "webhook") != notice_key("e1", "ops", "in_app")


# -- what notify knows of a ticket -------------------------------------------------------------------------


def test_the_ticket_context_follows_the_lifecycle() -> None:
    seen = []
    ctx: TicketContext | None = None
    for event in lifecycle():
        ctx = apply(ctx, event)
        seen.append((event.type, ctx.status))
    assert ctx is not None
    assert (ctx.number, ctx.org, ctx.title) == (NUMBER, "acme", TITLE)
    assert (ctx.requester_id, ctx.requester_name, ctx.requester_email) == ("E1001", "李雷", "li.lei@acme.example")
    assert (ctx.priority, ctx.team, ctx.team_groups, ctx.calendar) == (
        "P1",
        "开发团队 Development",
        ("development",),
        "cn-workdays",
    )
    assert (ctx.expected_response, ctx.business_time) == ("PT2H", True)
    assert (ctx.assignee, ctx.co_handlers, ctx.tier) == ("agent-1", ("engineer-2",), "tier2")
    assert ctx.task_candidate_groups == ("tier1", "tier2")
    assert ctx.last_agent_comment == "已定位到 10 月 3 日的一条订单金额为空。"  # not the requester's comment
    assert ctx.cause.startswith("10 月 3 日订单 SO-1003")
    assert ctx.rating == "dissatisfied"
    assert ctx.submitted_at == T0
    statuses = dict(seen)
    assert statuses["ticket.classified"] == "accepted"
    assert statuses["ticket.info_requested"] == "waiting_for_requester"
    assert statuses["ticket.resolved"] == "resolved"
    assert statuses["ticket.closed"] == "closed"
    assert statuses["ticket.cancelled"] == "cancelled"
    assert ("ticket.verified", "in_progress") in seen
    assert ("ticket.verified", "completed") in seen


def test_the_context_survives_storage_as_json() -> None:
    ctx: TicketContext | None = None
    for event in lifecycle():
        ctx = apply(ctx, event)
    assert ctx is not None
    stored = json.loads(json.dumps(ctx.to_dict()))
    assert TicketContext.from_dict(stored) == ctx
    assert TicketContext.from_dict({**stored, "from_a_newer_version": 1}) == ctx


def test_a_24x7_ticket_is_not_in_business_time() -> None:
    ctx = context(submitted(), classified(types_pb2.PRIORITY_P0))
    assert (ctx.calendar, ctx.business_time, ctx.expected_response) == ("24x7", False, "PT30M")
    assert not replace(ctx, calendar="").business_time


def test_templates_see_exactly_the_documented_variables() -> None:
    event = classified()
    (notice, _) = plan(event, context(submitted(), event), shipped().rules, shipped().directory)
    assert set(notice.variables) == TEMPLATE_VARIABLES
    for name, fields in FIELDS.items():
        assert set(notice.variables[name]) == fields, name
    assert notice.variables["recipient"] == {
        "name": "李雷",
        "address": "li.lei@acme.example",
        "kind": "requester",
        "channel": "email",
    }
    assert notice.variables["time_zone"] == "Asia/Shanghai"
    assert notice.variables["occurred_at"] == datetime(2023, 10, 27, 1, 30, 6, tzinfo=UTC)
