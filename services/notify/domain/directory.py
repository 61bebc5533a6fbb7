"""The directory (`bpmn/notify/directory.toml`): per organisation, the people notify may write
to, the groups they belong to, and the webhooks it may call. Pure: takes the file's text.

    [defaults]                       # what an organisation leaves out; also for organisations not listed
    locale = "zh-CN"                 # zh-CN unless said otherwise
    time_zone = "Asia/Shanghai"
    mail_from = "技术支持 <support@example.com>"     # required here
    reply_to = "support@example.com"                 # optional
    portal_url = "https://support.example.com/tickets/{ticket}"   # optional; {ticket} = number

    [orgs.acme]
    name = "ACME 科技有限公司"
    # locale, time_zone, mail_from, reply_to, portal_url as in [defaults]

    [orgs.acme.people.agent-1]       # the key is the person's subject id (the JWT `sub`)
    name = "王磊"
    email = "wang.lei@acme.example"  # optional: without it the person gets in-app notices only
    locale = "en"                    # optional

    [orgs.acme.groups.tier1]         # a candidate group of the process, or any other list of people
    members = ["agent-1"]
    team = "服务台 Service desk"      # optional: routing.dmn's team this group is
    webhook = "acme-desk"            # optional: the group's chat robot

    [orgs.acme.webhooks.acme-desk]
    kind = "wecom"                   # generic | dingtalk | wecom
    url_env = "NOTIFY_ACME_DESK_URL" # or url = "https://…" when the URL holds no credential
    secret_env = "NOTIFY_ACME_DESK_SECRET"   # dingtalk (加签) and generic (HMAC) only; optional
    locale = "zh-CN"                 # optional
    max_per_minute = 20              # optional: the robot's rate limit (throttle.py); dingtalk and
                                     # wecom 20 unless said, generic none; 0 = no limit

Secrets are never written here: `url_env` and `secret_env` name environment variables that the
service reads at start-up. A `url` carrying a robot's credential (`access_token=`, `key=`) is
rejected for that reason.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.notify.domain.errors import RulesError
from services.notify.domain.problems import Problems, child, one_of, suggest
from services.notify.domain.throttle import DEFAULT_PER_MINUTE, MAX_PER_MINUTE

FALLBACK_LOCALE: Final = "zh-CN"
WEBHOOK_KINDS: Final = ("generic", "dingtalk", "wecom")
WebhookKind = Literal["generic", "dingtalk", "wecom"]

LOCALE: Final = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:.]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
#: Query parameters that make a robot URL a credential (DingTalk access_token, WeCom key).
_CREDENTIAL_PARAMS = frozenset({"access_token", "key", "token", "secret", "sign"})

_TOP_KEYS = ("defaults", "orgs")
_ORG_SETTINGS = ("locale", "time_zone", "mail_from", "reply_to", "portal_url")
_ORG_KEYS = ("name", *_ORG_SETTINGS, "people", "groups", "webhooks")
_PERSON_KEYS = ("name", "email", "locale", "time_zone")
_GROUP_KEYS = ("members", "team", "webhook")
_WEBHOOK_KEYS = ("kind", "url", "url_env", "secret_env", "locale", "max_per_minute")


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str = ""
    email: str = ""
    locale: str = ""
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    members: tuple[str, ...] = ()
    team: str = ""
    webhook: str = ""


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    kind: WebhookKind
    url: str = ""
    url_env: str = ""
    secret_env: str = ""
    locale: str = ""
    #: Messages it takes in any 60 seconds (0: no limit).
    max_per_minute: int = 0


@dataclass(frozen=True, slots=True)
class OrgDirectory:
    id: str
    name: str = ""
    locale: str = FALLBACK_LOCALE
    time_zone: str = "Asia/Shanghai"
    mail_from: str = ""
    reply_to: str = ""
    portal_url: str = ""
    people: Mapping[str, Person] = field(default_factory=lambda: MappingProxyType({}))
    groups: Mapping[str, Group] = field(default_factory=lambda: MappingProxyType({}))
    webhooks: Mapping[str, Webhook] = field(default_factory=lambda: MappingProxyType({}))

    def ticket_url(self, number: str) -> str:
        return self.portal_url.replace("{ticket}", number) if self.portal_url else ""

    def team_groups(self, team: str) -> tuple[Group, ...]:
        """The groups that say they are `team` (routing.dmn's team name)."""
        return tuple(g for g in self.groups.values() if team and g.team == team)


@dataclass(frozen=True, slots=True)
class Directory:
    defaults: OrgDirectory
    orgs: Mapping[str, OrgDirectory]

    def org(self, org: str) -> OrgDirectory:
        """The organisation's entry; one not listed gets [defaults] (and no people, groups or webhooks)."""
        listed = self.orgs.get(org)
        if listed is not None:
            return listed
        d = self.defaults
        return OrgDirectory(org, org, d.locale, d.time_zone, d.mail_from, d.reply_to, d.portal_url)


def parse_directory(text: str, *, source: str = "directory.toml") -> Directory:
    """Parse the directory's text; raises RulesError naming every problem."""
    problems = Problems()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(source, "", f"not valid TOML: {exc}")
        raise RulesError(problems.items) from None
    reader = _Reader(source, problems)
    directory = reader.directory(data)
    if problems or directory is None:
        raise RulesError(problems.items)
    return directory


class _Reader:
    def __init__(self, source: str, problems: Problems) -> None:
        self.file = source
        self.problems = problems

    def add(self, path: str, message: str) -> None:
        self.problems.add(self.file, path, message)

    def directory(self, data: dict[str, Any]) -> Directory | None:
        self.problems.unknown_keys(self.file, "", data, _TOP_KEYS)
        raw_defaults = data.get("defaults", {})
        if not isinstance(raw_defaults, dict):
            self.add("defaults", "expected a table: [defaults]")
            raw_defaults = {}
        self.problems.unknown_keys(self.file, "defaults", raw_defaults, _ORG_SETTINGS)
        base = OrgDirectory("", "")
        defaults = self._settings("defaults", raw_defaults, base)
        if not defaults.mail_from and "mail_from" not in raw_defaults:
            self.add(
                "defaults.mail_from", 'required: the From: of notify\'s e-mails, e.g. "技术支持 <support@example.com>"'
            )
        orgs: dict[str, OrgDirectory] = {}
        raw_orgs = data.get("orgs", {})
        if not isinstance(raw_orgs, dict):
            self.add("orgs", "expected tables: [orgs.<organisation>]")
            raw_orgs = {}
        for org_id, raw in raw_orgs.items():
            path = child("orgs", org_id)
            if not isinstance(raw, dict):
                self.add(path, f"expected a table: [orgs.{org_id}]")
                continue
            if not _NAME.match(org_id):
                self.add(path, "an organisation id is letters, digits, '_', '-', '.' (as in organisations.toml)")
            orgs[org_id] = self._org(path, org_id, raw, defaults)
        return Directory(defaults, MappingProxyType(orgs))

    def _settings(self, path: str, raw: Mapping[str, Any], base: OrgDirectory) -> OrgDirectory:
        locale = self._locale(child(path, "locale"), raw.get("locale")) or base.locale
        zone = self._zone(child(path, "time_zone"), raw.get("time_zone")) or base.time_zone
        mail_from = base.mail_from
        if "mail_from" in raw:
            mail_from = self._mailbox(child(path, "mail_from"), raw["mail_from"]) or mail_from
        reply_to = base.reply_to
        if "reply_to" in raw:
            reply_to = self._mailbox(child(path, "reply_to"), raw["reply_to"]) or reply_to
        portal = base.portal_url
        if "portal_url" in raw:
            portal = self._portal(child(path, "portal_url"), raw["portal_url"]) or portal
        return OrgDirectory(base.id, base.name, locale, zone, mail_from, reply_to, portal)

    def _org(self, path: str, org_id: str, raw: dict[str, Any], defaults: OrgDirectory) -> OrgDirectory:
        self.problems.unknown_keys(self.file, path, raw, _ORG_KEYS)
        settings = self._settings(path, raw, defaults)
        name = raw.get("name", org_id)
        if not isinstance(name, str) or not name.strip():
            self.add(child(path, "name"), "expected the organisation's display name as text")
            name = org_id
        people = {
            pid: self._person(child(child(path, "people"), pid), pid, value)
            for pid, value in self._tables(child(path, "people"), raw.get("people", {})).items()
        }
        webhooks = {
            wid: hook
            for wid, value in self._tables(child(path, "webhooks"), raw.get("webhooks", {})).items()
            if (hook := self._webhook(child(child(path, "webhooks"), wid), wid, value)) is not None
        }
        groups = {
            gid: self._group(child(child(path, "groups"), gid), gid, value, people, webhooks)
            for gid, value in self._tables(child(path, "groups"), raw.get("groups", {})).items()
        }
        return OrgDirectory(
            org_id,
            name.strip(),
            settings.locale,
            settings.time_zone,
            settings.mail_from,
            settings.reply_to,
            settings.portal_url,
            MappingProxyType(people),
            MappingProxyType(groups),
            MappingProxyType(webhooks),
        )

    def _tables(self, path: str, value: object) -> dict[str, dict[str, Any]]:
        if not isinstance(value, dict):
            self.add(path, f"expected tables: [{path}.<name>]")
            return {}
        out = {}
        for name, table in value.items():
            if not _NAME.match(name):
                self.add(child(path, name), "a name is 1 to 100 letters, digits, '_', '-', '.', '@'")
            if not isinstance(table, dict):
                self.add(child(path, name), f"expected a table: [{child(path, name)}]")
                continue
            out[name] = table
        return out

    def _person(self, path: str, pid: str, raw: dict[str, Any]) -> Person:
        self.problems.unknown_keys(self.file, path, raw, _PERSON_KEYS)
        name = self._optional_text(child(path, "name"), raw.get("name")) or pid
        email = ""
        if "email" in raw:
            value = raw["email"]
            if not isinstance(value, str) or not _EMAIL.match(value.strip()):
                self.add(child(path, "email"), f'{value!r} is not an e-mail address such as "li.lei@example.com"')
            else:
                email = value.strip()
        locale = self._locale(child(path, "locale"), raw.get("locale"))
        zone = self._zone(child(path, "time_zone"), raw.get("time_zone"))
        return Person(pid, name, email, locale, zone)

    def _group(
        self,
        path: str,
        gid: str,
        raw: dict[str, Any],
        people: Mapping[str, Person],
        webhooks: Mapping[str, Webhook],
    ) -> Group:
        self.problems.unknown_keys(self.file, path, raw, _GROUP_KEYS)
        members: list[str] = []
        value = raw.get("members", [])
        if not isinstance(value, list):
            self.add(child(path, "members"), 'expected a list of people, e.g. ["agent-1", "lead-1"]')
            value = []
        for n, member in enumerate(value, start=1):
            if not isinstance(member, str) or member not in people:
                where = child(child(path, "members"), n)
                hint = suggest(member, people) if isinstance(member, str) else ""
                self.add(where, f"{member!r} is not a person of this organisation{hint}: add it under people first")
            elif member not in members:
                members.append(member)
        team = self._optional_text(child(path, "team"), raw.get("team"))
        hook = self._optional_text(child(path, "webhook"), raw.get("webhook"))
        if hook and hook not in webhooks:
            self.add(
                child(path, "webhook"),
                f"'{hook}' is not a webhook of this organisation{suggest(hook, webhooks)}"
                f" (known: {one_of(webhooks) or 'none'})",
            )
        return Group(gid, tuple(members), team, hook)

    def _webhook(self, path: str, name: str, raw: dict[str, Any]) -> Webhook | None:
        self.problems.unknown_keys(self.file, path, raw, _WEBHOOK_KEYS)
        kind = raw.get("kind")
        if kind not in WEBHOOK_KINDS:
            self.add(child(path, "kind"), f"{kind!r} is not a webhook kind ({', '.join(WEBHOOK_KINDS)})")
            return None
        url, url_env = raw.get("url"), raw.get("url_env")
        if (url is None) == (url_env is None):
            self.add(path, "give exactly one of url and url_env (the name of the environment variable holding it)")
        if url is not None:
            url = self._url(child(path, "url"), url)
        if url_env is not None:
            url_env = self._env(child(path, "url_env"), url_env)
        secret_env = raw.get("secret_env")
        if secret_env is not None:
            secret_env = self._env(child(path, "secret_env"), secret_env)
            if kind == "wecom":
                self.add(child(path, "secret_env"), "WeCom robots are not signed (the key is in the URL): remove it")
        locale = self._locale(child(path, "locale"), raw.get("locale"))
        per_minute = self._per_minute(child(path, "max_per_minute"), raw.get("max_per_minute"), kind)
        return Webhook(name, kind, url or "", url_env or "", secret_env or "", locale, per_minute)

    # -- values ----------------------------------------------------------------------------

    def _optional_text(self, path: str, value: object) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(path, f"expected text, got {value!r}")
            return ""
        return value.strip()

    def _per_minute(self, path: str, value: object, kind: WebhookKind) -> int:
        if value is None:
            return DEFAULT_PER_MINUTE[kind]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PER_MINUTE:
            self.add(path, f"{value!r} is not a whole number from 0 (no limit) to {MAX_PER_MINUTE}")
            return DEFAULT_PER_MINUTE[kind]
        return value

    def _locale(self, path: str, value: object) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or not LOCALE.match(value):
            self.add(path, f'{value!r} is not a locale such as "zh-CN" or "en"')
            return ""
        return value

    def _zone(self, path: str, value: object) -> str:
        if value is None:
            return ""
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(path, f'{value!r} is not a known time zone (e.g. "Asia/Shanghai")')
            return ""
        return value

    def _mailbox(self, path: str, value: object) -> str:
        address = parseaddr(value)[1] if isinstance(value, str) else ""
        if not isinstance(value, str) or not _EMAIL.match(address) or "\n" in value or "\r" in value:
            self.add(path, f'{value!r} is not a mailbox such as "技术支持 <support@example.com>"')
            return ""
        return value.strip()

    def _portal(self, path: str, value: object) -> str:
        if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or "{ticket}" not in value:
            self.add(
                path,
                f'{value!r}: expected an http(s) URL with {{ticket}} where the number goes, e.g. "https://support.example.com/tickets/{{ticket}}"',
            )
            return ""
        return value

    def _url(self, path: str, value: object) -> str:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            self.add(path, f"{value!r} is not an http(s) URL")
            return ""
        secret = sorted({k for k, _ in parse_qsl(parts.query)} & _CREDENTIAL_PARAMS)
        if secret:
            self.add(
                path,
                f"the URL carries a credential ({', '.join(secret)}=…): put the URL in an environment variable"
                " and name it with url_env instead",
            )
            return ""
        return str(value)

    def _env(self, path: str, value: object) -> str:
        if not isinstance(value, str) or not _ENV_NAME.match(value):
            self.add(path, f'{value!r} is not an environment variable name such as "NOTIFY_OPS_ROBOT_SECRET"')
            return ""
        return value
