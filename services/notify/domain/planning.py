"""From an event to the notices it causes: who, on which channel, with which template and locale.

`plan` is pure and deterministic: the same event, context, rules and directory give the same
notices in the same order with the same `notice_key`, so a redelivered event plans exactly the
notices already stored, and the store's unique key (event_id, recipient, channel) drops them.
Within one event a recipient gets at most one notice per channel: the first rule that reaches
them wins.

The context passed in is the ticket *after* the event (`ticket_context.apply` first): a
`ticket.assigned` notice goes to the new assignee.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notify.domain.directory import FALLBACK_LOCALE, Directory, Group, OrgDirectory, Person, Webhook
from services.notify.domain.event import TicketEvent
from services.notify.domain.rules import Channel, Delivery, Fact, RuleBook
from services.notify.domain.ticket_context import TicketContext

#: Told why a rule reached nobody (no e-mail for the assignee, a group without members…).
OnUnresolved = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlannedNotice:
    """One notification to create: `Notification` of notify.proto before it is rendered and sent."""

    notice_key: str
    event_id: str
    event_type: str
    organization: str
    ticket_number: str
    channel: Channel
    #: E-mail address (email), subject id (in_app) or webhook name (webhook), as notify.proto says.
    recipient: str
    recipient_name: str
    template: str
    locale: str
    #: The webhook to call (channel webhook), else None.
    webhook: Webhook | None
    #: What the templates see (templates.TEMPLATE_VARIABLES).
    variables: Mapping[str, Any]
    #: The rule that caused it, e.g. `rules.toml: events."ticket.resolved"[1]`.
    rule: str


def notice_key(event_id: str, recipient: str, channel: str) -> str:
    """The notice's identity: the same for a redelivered event, different for any other
    (event, recipient, channel). Hex SHA-256; also the local part of the e-mail's Message-ID."""
    material = "\x1f".join((event_id, channel, _normalised(recipient, channel)))
    return hashlib.sha256(material.encode()).hexdigest()


def facts(event: TicketEvent, context: TicketContext) -> dict[str, Fact]:
    """What a rule's `when` tests: the event's scalar payload fields plus priority, actor_role and
    (ticket.classified) reclassified."""
    out: dict[str, Fact] = {k: v for k, v in event.payload.items() if isinstance(v, str | bool | int)}
    out["priority"] = context.priority or event.text("priority")
    out["actor_role"] = event.actor_role
    out["reclassified"] = bool(context.first_classification_id) and context.first_classification_id != event.event_id
    return out


def plan(
    event: TicketEvent,
    context: TicketContext,
    rules: RuleBook,
    directory: Directory,
    *,
    on_unresolved: OnUnresolved | None = None,
) -> list[PlannedNotice]:
    org = directory.org(event.organization)
    known = facts(event, context)
    seen: set[tuple[str, str]] = set()
    out: list[PlannedNotice] = []
    for rule in rules.for_org(event.organization).deliveries(event.type):
        if not rule.matches(known):
            continue

        def unresolved(reason: str, rule: Delivery = rule) -> None:
            if on_unresolved is not None:
                on_unresolved(f"{event.type} {event.ticket_number}: {rule.source}: {reason}")

        for target in _targets(rule, event, context, org, unresolved):
            if rule.skip_actor and target.person_id and target.person_id == event.actor_subject:
                continue
            identity = (rule.channel, _normalised(target.address, rule.channel))
            if identity in seen:
                continue
            seen.add(identity)
            locale = rule.locale or target.locale or org.locale or FALLBACK_LOCALE
            out.append(
                PlannedNotice(
                    notice_key=notice_key(event.event_id, target.address, rule.channel),
                    event_id=event.event_id,
                    event_type=event.type,
                    organization=event.organization,
                    ticket_number=event.ticket_number,
                    channel=rule.channel,
                    recipient=target.address,
                    recipient_name=target.name,
                    template=rule.template,
                    locale=locale,
                    webhook=target.webhook,
                    variables=template_variables(
                        event, context, org, target=target, channel=rule.channel, kind=rule.to, locale=locale
                    ),
                    rule=rule.source,
                )
            )
    return out


# -- recipients ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    address: str
    name: str
    person_id: str = ""
    locale: str = ""
    time_zone: str = ""
    webhook: Webhook | None = None


def _targets(
    rule: Delivery, event: TicketEvent, ctx: TicketContext, org: OrgDirectory, unresolved: Callable[[str], None]
) -> Iterator[_Target]:
    match rule.to:
        case "requester":
            yield from _requester(rule.channel, ctx, org, unresolved)
        case "assignee":
            if not ctx.assignee:
                unresolved("the ticket has no assignee yet")
            else:
                yield from _people(rule.channel, (ctx.assignee,), org, unresolved)
        case "co_handlers":
            yield from _people(rule.channel, ctx.co_handlers, org, unresolved)
        case "task_assignee":
            # The task's own person (task.created's assignee, task.claimed's claimer), who need not
            # be the ticket's handler: a change manager claiming an approval, a named reviewer.
            if not event.text("assignee"):
                unresolved("the task is assigned to nobody")
            else:
                yield from _people(rule.channel, (event.text("assignee"),), org, unresolved)
        case "candidate_groups":
            if not ctx.task_candidate_groups:
                unresolved("no task with candidate groups yet")
            yield from _groups(rule.channel, _known_groups(ctx.task_candidate_groups, org, unresolved), org, unresolved)
        case "team":
            groups = org.team_groups(ctx.team) or _known_groups(ctx.team_groups, org, unresolved)
            if not groups:
                unresolved(f"no group in directory.toml is the team {ctx.team!r}" if ctx.team else "not routed yet")
            yield from _groups(rule.channel, groups, org, unresolved)
        case "group":
            yield from _groups(rule.channel, _known_groups((rule.group,), org, unresolved), org, unresolved)
        case "webhook":
            hook = org.webhooks.get(rule.webhook)
            if hook is None:
                unresolved(f"organisation {org.id!r} has no webhook {rule.webhook!r} in directory.toml")
            else:
                yield _hook_target(hook, org)


def _requester(
    channel: Channel, ctx: TicketContext, org: OrgDirectory, unresolved: Callable[[str], None]
) -> Iterator[_Target]:
    person = org.people.get(ctx.requester_id) if ctx.requester_id else None
    name = ctx.requester_name or (person.name if person else "") or ctx.requester_id
    locale = (person.locale if person else "") or ctx.requester_locale
    zone = person.time_zone if person else ""
    if channel == "email":
        address = ctx.requester_email or (person.email if person else "")
        if not address:
            unresolved("the requester left no e-mail address")
            return
        yield _Target(address, name, ctx.requester_id, locale, zone)
    elif channel == "in_app":
        if not ctx.requester_id:
            unresolved("the requester has no id (subject) for the in-app inbox")
            return
        yield _Target(ctx.requester_id, name, ctx.requester_id, locale, zone)


def _people(
    channel: Channel, ids: tuple[str, ...], org: OrgDirectory, unresolved: Callable[[str], None]
) -> Iterator[_Target]:
    for pid in ids:
        person = org.people.get(pid) or Person(pid, pid)
        if channel == "in_app":
            yield _Target(pid, person.name, pid, person.locale, person.time_zone)
        elif channel == "email":
            if person.email:
                yield _Target(person.email, person.name, pid, person.locale, person.time_zone)
            else:
                unresolved(f"{pid!r} has no e-mail in directory.toml (orgs.{org.id}.people)")


def _groups(
    channel: Channel, groups: tuple[Group, ...], org: OrgDirectory, unresolved: Callable[[str], None]
) -> Iterator[_Target]:
    for group in groups:
        if channel == "webhook":
            hook = org.webhooks.get(group.webhook) if group.webhook else None
            if hook is None:
                unresolved(f"group {group.id!r} has no webhook in directory.toml")
            else:
                yield _hook_target(hook, org)
        elif not group.members:
            unresolved(f"group {group.id!r} has no members in directory.toml")
        else:
            yield from _people(channel, group.members, org, unresolved)


def _known_groups(ids: tuple[str, ...], org: OrgDirectory, unresolved: Callable[[str], None]) -> tuple[Group, ...]:
    found = []
    for gid in ids:
        group = org.groups.get(gid)
        if group is None:
            unresolved(f"organisation {org.id!r} has no group {gid!r} in directory.toml")
        else:
            found.append(group)
    return tuple(found)


def _hook_target(hook: Webhook, org: OrgDirectory) -> _Target:
    return _Target(hook.name, hook.name, locale=hook.locale, time_zone=org.time_zone, webhook=hook)


def _normalised(recipient: str, channel: str) -> str:
    # E-mail addresses compare case-insensitively in practice; ids and webhook names do not.
    return recipient.strip().lower() if channel == "email" else recipient


# -- what templates see ----------------------------------------------------------------------------


def template_variables(
    event: TicketEvent,
    ctx: TicketContext,
    org: OrgDirectory,
    *,
    target: _Target,
    channel: str,
    kind: str,
    locale: str,
) -> dict[str, Any]:
    def name_of(pid: str) -> str:
        person = org.people.get(pid)
        return person.name if person else pid

    ticket = {
        "number": ctx.number,
        "title": ctx.title,
        "url": org.ticket_url(ctx.number),
        "status": ctx.status,
        "priority": ctx.priority,
        "category": ctx.category,
        "problem_type": ctx.problem_type,
        "team": ctx.team,
        "tier": ctx.tier,
        "requester_id": ctx.requester_id,
        "requester_name": ctx.requester_name or name_of(ctx.requester_id),
        "vip": ctx.vip,
        "submitted_at": ctx.submitted_at,
        "assignee": ctx.assignee,
        "assignee_name": name_of(ctx.assignee) if ctx.assignee else "",
        "co_handler_names": [name_of(p) for p in ctx.co_handlers],
        "sla_targets": dict(ctx.sla_targets),
        "expected_response": ctx.expected_response,
        "business_time": ctx.business_time,
        "calendar": ctx.calendar,
        "task_name": ctx.task_name,
        "task_due_at": ctx.task_due_at,
        "last_agent_comment": ctx.last_agent_comment,
        "cause": ctx.cause,
        "measures": ctx.measures,
        "summary": ctx.summary,
        "rating": ctx.rating,
    }
    occurred: datetime = event.occurred_at
    return {
        "ticket": ticket,
        "event": dict(event.payload),
        "event_type": event.type,
        "event_id": event.event_id,
        "occurred_at": occurred,
        "actor": {"subject": event.actor_subject, "role": event.actor_role, "name": name_of(event.actor_subject)},
        "recipient": {"name": target.name, "address": target.address, "kind": kind, "channel": channel},
        "org": {"id": org.id, "name": org.name or org.id, "portal_url": org.portal_url},
        # Display names of the people the payload names by id (approver, reviewer…): `| name`.
        "names": {value: org.people[value].name for value in _payload_texts(event.payload) if value in org.people},
        "locale": locale,
        "time_zone": target.time_zone or org.time_zone,
    }


def _payload_texts(payload: Mapping[str, Any]) -> Iterator[str]:
    for value in payload.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (item for item in value if isinstance(item, str))
