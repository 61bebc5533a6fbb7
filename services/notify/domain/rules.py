"""The rules file (`bpmn/notify/rules.toml`, per organisation `orgs/<org>/rules.toml`): which
event notifies whom, on which channel, with which template. Pure: takes the files' text.

    [[events."ticket.resolved"]]     # one [[…]] block per delivery; any number per event
    to = "requester"                 # requester | assignee | co_handlers | task_assignee | candidate_groups | team
                                     # | group | webhook
    channel = ["email", "in_app"]    # email | webhook | in_app, one or a list
    template = "result_notice"       # templates/result_notice.<locale>.txt.j2 …
    # locale = "en"                  # optional: instead of the recipient's own
    # group = "team_lead"            # with to = "group": a group of directory.toml
    # webhook = "acme-ops"           # with to = "webhook": a webhook of directory.toml
    # when = { priority = ["P0", "P1"] }   # optional: only when every fact matches (a list: any of;
    #                                      # { not = … }: none of), e.g. when = { assignee = { not = "" } }
    # skip_actor = true              # optional: not to the person who caused the event

Recipients: `requester` (from ticket.submitted), `assignee` (the ticket's main handler, as the
last ticket.assigned named them: claiming a task never changes it), `co_handlers`
(ticket.assigned's), `task_assignee` (task.created and task.claimed only: the person the task is
assigned to or claimed by), `candidate_groups` (the members of the groups of the last task
created), `team` (the groups directory.toml marks with the routed team, else routing's candidate
groups), `group` (a named directory group), `webhook` (a named directory webhook). Channel
`webhook` goes to a `webhook`, or to the robots of the groups of `team`, `group` or
`candidate_groups` (their `webhook` in directory.toml); people are reached by `email` and `in_app`.

An organisation's own rules file lists only the events it changes: its list for an event replaces
the default list for that event (an empty list, `events."task.created" = []`, turns it off).

Every problem of every file is reported at once (`RulesError`), each naming file, key path (list
entries counted from 1) and what to do.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from services.kit.events import EVENT_TYPES
from services.notify.domain.directory import LOCALE, OrgDirectory
from services.notify.domain.errors import ConfigProblem, RulesError
from services.notify.domain.event import PRIORITIES, RATINGS, FactKind, facts_of
from services.notify.domain.problems import Problems, child, key, one_of, suggest

Channel = Literal["email", "webhook", "in_app"]
CHANNELS: Final[tuple[Channel, ...]] = ("email", "webhook", "in_app")
RECIPIENTS: Final = (
    "requester",
    "assignee",
    "co_handlers",
    "task_assignee",
    "candidate_groups",
    "team",
    "group",
    "webhook",
)
PEOPLE_RECIPIENTS: Final = frozenset({"requester", "assignee", "co_handlers", "task_assignee"})
#: The events that name a task's assignee (`task_assignee`): the task created for, or claimed by, a person.
TASK_ASSIGNEE_EVENTS: Final = ("task.created", "task.claimed")
GROUP_RECIPIENTS: Final = frozenset({"candidate_groups", "team", "group"})
_DELIVERY_KEYS = ("to", "channel", "template", "locale", "group", "webhook", "when", "skip_actor")
_TEMPLATE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
Fact = str | bool | int


@dataclass(frozen=True, slots=True)
class Condition:
    """A `when` entry: the fact is one of `values` (or, negated, none of them)."""

    values: tuple[Fact, ...]
    negate: bool = False

    def holds(self, value: Fact | None) -> bool:
        # `True == 1` in Python: compare type and value, so a flag never matches a number.
        found = any(type(value) is type(v) and value == v for v in self.values)
        return found != self.negate


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient kind on one channel with one template, for one event type."""

    event_type: str
    to: str
    channel: Channel
    template: str
    locale: str = ""
    group: str = ""
    webhook: str = ""
    #: fact → the condition on it; every condition must hold.
    when: Mapping[str, Condition] = field(default_factory=lambda: MappingProxyType({}))
    skip_actor: bool = False
    #: Where it was written, for messages: `rules.toml: events."ticket.resolved"[1]`.
    source: str = ""

    def matches(self, facts: Mapping[str, Fact]) -> bool:
        return all(condition.holds(facts.get(name)) for name, condition in self.when.items())


@dataclass(frozen=True, slots=True)
class Rules:
    """Event type → its deliveries, in file order."""

    events: Mapping[str, tuple[Delivery, ...]]

    def deliveries(self, event_type: str) -> tuple[Delivery, ...]:
        return self.events.get(event_type, ())


@dataclass(frozen=True, slots=True)
class RuleBook:
    """The default rules and each organisation's overrides."""

    default: Rules
    orgs: Mapping[str, Rules] = field(default_factory=lambda: MappingProxyType({}))

    def for_org(self, org: str) -> Rules:
        override = self.orgs.get(org)
        if override is None:
            return self.default
        return Rules(MappingProxyType({**self.default.events, **override.events}))


def parse_rules(text: str, *, source: str = "rules.toml") -> Rules:
    """Parse one rules file; raises RulesError naming every problem."""
    problems = Problems()
    rules = _read_rules(text, source, problems)
    if problems or rules is None:
        raise RulesError(problems.items)
    return rules


def load_rule_book(files: Mapping[str, str]) -> RuleBook:
    """`rules.toml` and any `orgs/<org>/rules.toml` (paths relative to bpmn/notify/)."""
    problems = Problems()
    default = None
    if "rules.toml" in files:
        default = _read_rules(files["rules.toml"], "rules.toml", problems)
    else:
        problems.add("rules.toml", "", "missing: the default rules are required")
    orgs: dict[str, Rules] = {}
    for path in sorted(files):
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "orgs" and parts[2] == "rules.toml":
            read = _read_rules(files[path], path, problems)
            if read is not None:
                orgs[parts[1]] = read
    if problems or default is None:
        raise RulesError(problems.items)
    return RuleBook(default, MappingProxyType(orgs))


def template_problems(rules: Rules, templates: Mapping[str, frozenset[str]]) -> list[ConfigProblem]:
    """Problems with the templates `rules` name: `templates` maps each template name to the
    locales it exists in (`TemplateSet.catalog`). A missing template is a problem; so is a locale
    override naming a locale the template does not have."""
    out: list[ConfigProblem] = []
    for deliveries in rules.events.values():
        for d in deliveries:
            file, _, path = d.source.partition(": ")
            if d.template not in templates:
                hint = suggest(d.template, templates)
                out.append(
                    ConfigProblem(
                        file,
                        child(path, "template"),
                        f"there is no template '{d.template}'{hint}: add templates/{d.template}.zh-CN.txt.j2"
                        f" (known: {one_of(templates)})",
                    )
                )
            elif d.locale and d.locale not in templates[d.template]:
                out.append(
                    ConfigProblem(
                        file,
                        child(path, "locale"),
                        f"template '{d.template}' has no '{d.locale}' version"
                        f" (has: {one_of(templates[d.template])}): add templates/{d.template}.{d.locale}.txt.j2",
                    )
                )
    return _unique(out)


def directory_problems(rules: Rules, org: OrgDirectory) -> list[ConfigProblem]:
    """Problems with the groups and webhooks `rules` name, for organisation `org`."""
    out: list[ConfigProblem] = []
    for deliveries in rules.events.values():
        for d in deliveries:
            file, _, path = d.source.partition(": ")
            for kind, wanted, known in (("group", d.group, org.groups), ("webhook", d.webhook, org.webhooks)):
                if wanted and wanted not in known:
                    out.append(
                        ConfigProblem(
                            file,
                            child(path, kind),
                            f"organisation '{org.id}' has no {kind} '{wanted}' in directory.toml"
                            f"{suggest(wanted, known)} (has: {one_of(known) or 'none'})",
                        )
                    )
    return _unique(out)


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    # A delivery with a list of channels is one Delivery per channel: report its problem once.
    return list(dict.fromkeys(problems))


# -- reading -------------------------------------------------------------------------------------


def _read_rules(text: str, source: str, problems: Problems) -> Rules | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(source, "", f"not valid TOML: {exc}")
        return None
    problems.unknown_keys(source, "", data, ("events",))
    raw_events = data.get("events", {})
    if not isinstance(raw_events, dict):
        problems.add(source, "events", 'expected tables: [[events."ticket.resolved"]]')
        return None
    events: dict[str, tuple[Delivery, ...]] = {}
    for event_type, raw in raw_events.items():
        path = key("events", event_type)
        if event_type not in EVENT_TYPES:
            problems.add(
                source,
                path,
                f"'{event_type}' is not an event type{suggest(event_type, EVENT_TYPES)}"
                f" (events.proto has: {one_of(EVENT_TYPES)})",
            )
            continue
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            problems.add(
                source, path, f'expected a list of deliveries: [[events."{event_type}"]] blocks, or [] for none'
            )
            continue
        deliveries: list[Delivery] = []
        for n, item in enumerate(raw, start=1):
            deliveries.extend(_delivery(source, child(path, n), event_type, item, problems))
        events[event_type] = tuple(deliveries)
    return Rules(MappingProxyType(events))


def _delivery(source: str, path: str, event_type: str, raw: dict[str, Any], problems: Problems) -> list[Delivery]:
    def add(sub: str, message: str) -> None:
        # `sub` is a key path below the delivery, already formatted (`channel[2]`, `when.clock`).
        problems.add(source, f"{path}.{sub}" if sub else path, message)

    before = len(problems.items)
    problems.unknown_keys(source, path, raw, _DELIVERY_KEYS)
    for required in ("to", "channel", "template"):
        if required not in raw:
            add("", f"missing '{required}'")

    to = raw.get("to")
    if "to" in raw and to not in RECIPIENTS:
        hint = suggest(to, RECIPIENTS) if isinstance(to, str) else ""
        add("to", f"{to!r} is not a recipient{hint} ({', '.join(RECIPIENTS)})")
        to = None

    channels: list[Channel] = []
    raw_channels = raw.get("channel")
    listed = raw_channels if isinstance(raw_channels, list) else [raw_channels] if "channel" in raw else []
    if isinstance(raw_channels, list) and not raw_channels:
        add("channel", f"empty: name at least one channel ({', '.join(CHANNELS)})")
    for n, value in enumerate(listed, start=1):
        where = child("channel", n) if isinstance(raw_channels, list) else "channel"
        if value not in CHANNELS:
            hint = suggest(value, CHANNELS) if isinstance(value, str) else ""
            add(where, f"{value!r} is not a channel{hint} ({', '.join(CHANNELS)})")
        elif value in channels:
            add(where, f"'{value}' is listed twice")
        else:
            channels.append(value)

    template = raw.get("template")
    if "template" in raw and (not isinstance(template, str) or not template or set(template) - _TEMPLATE_NAME_CHARS):
        add("template", f"{template!r} is not a template name: lower-case letters, digits and '_', e.g. \"receipt\"")

    group = _named(raw, "group", to, add)
    webhook = _named(raw, "webhook", to, add)
    if to in PEOPLE_RECIPIENTS and "webhook" in channels:
        add("channel", f'a person has no webhook: use email or in_app for to = "{to}"')
    if to == "webhook" and any(c != "webhook" for c in channels):
        add("channel", 'to = "webhook" goes by channel = "webhook" only')
    if to == "task_assignee" and event_type not in TASK_ASSIGNEE_EVENTS:
        add(
            "to",
            f"{event_type} names no task's assignee: task_assignee is for {' and '.join(TASK_ASSIGNEE_EVENTS)}"
            ' (the ticket\'s handler is to = "assignee")',
        )

    locale = raw.get("locale", "")
    if not isinstance(locale, str) or (locale and not LOCALE.match(locale)):
        add("locale", f'{locale!r} is not a locale such as "zh-CN" or "en"')
        locale = ""

    skip_actor = raw.get("skip_actor", False)
    if not isinstance(skip_actor, bool):
        add("skip_actor", f"expected true or false, got {skip_actor!r}")

    when = _when(raw.get("when", {}), event_type, add)

    if len(problems.items) > before:
        return []
    return [
        Delivery(
            event_type=event_type,
            to=str(to),
            channel=channel,
            template=str(template),
            locale=locale,
            group=group,
            webhook=webhook,
            when=when,
            skip_actor=skip_actor is True,
            source=f"{source}: {path}",
        )
        for channel in channels
    ]


def _named(raw: Mapping[str, Any], name: str, to: object, add: Callable[[str, str], None]) -> str:
    """`group = "…"` with to = "group", `webhook = "…"` with to = "webhook": required there, nowhere else."""
    value = raw.get(name)
    if to == name and value is None:
        add("", f'to = "{name}" needs {name} = "<name in directory.toml>"')
    if value is None:
        return ""
    if to is not None and to != name:
        add(name, f'only with to = "{name}"')
        return ""
    if not isinstance(value, str) or not value:
        add(name, f"expected the {name}'s name in directory.toml, got {value!r}")
        return ""
    return value


def _when(raw: object, event_type: str, add: Callable[[str, str], None]) -> Mapping[str, Condition]:
    if not isinstance(raw, dict):
        add("when", 'expected a table, e.g. when = { priority = ["P0", "P1"] }')
        return MappingProxyType({})
    facts = facts_of(event_type)
    out: dict[str, Condition] = {}
    for name, value in raw.items():
        where = child("when", name)
        kind = facts.get(name)
        if kind is None:
            add(where, f"'{name}' is not a fact of {event_type}{suggest(name, facts)} (it has: {one_of(facts)})")
            continue
        negate = isinstance(value, dict)
        if negate:
            if set(value) != {"not"}:
                add(where, "a table here is { not = <value or list> }: the fact is none of them")
                continue
            value = value["not"]
            where = child(where, "not")
        values = value if isinstance(value, list) else [value]
        if not values:
            add(where, "empty: list at least one value")
            continue
        good: list[Fact] = []
        for v in values:
            problem = _fact_problem(kind, v)
            if problem:
                add(where, problem)
            else:
                good.append(v)
        out[name] = Condition(tuple(good), negate)
    return MappingProxyType(out)


def _fact_problem(kind: FactKind, value: object) -> str | None:
    if kind == "flag":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if kind == "number":
        return None if isinstance(value, int) and not isinstance(value, bool) else f"expected a number, got {value!r}"
    if kind == "priority":
        return None if value in PRIORITIES else f"{value!r} is not a priority ({', '.join(PRIORITIES)})"
    if kind == "rating":
        return None if value in RATINGS else f"{value!r} is not a rating ({', '.join(RATINGS)})"
    return None if isinstance(value, str) else f"expected text, got {value!r}"
