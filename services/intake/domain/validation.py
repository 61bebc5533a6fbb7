"""Checks a submission against the organisation's catalogue and limits.

Malformed or missing *required* fields reject the request (every violation reported at once).
Information that is merely incomplete does not: `missing_information` lists it so the ticket is
flagged and the workflow asks the requester (SOP §2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from services.intake.domain.catalog import Limits, Organisation
from services.intake.domain.errors import InvalidTicket
from services.intake.domain.submission import Environment, NewAttachment, Supplement, TicketSubmission
from services.kit.errors import FieldViolation

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,30}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ATTACHMENT_KINDS = frozenset({"screenshot", "log", "recording", "other"})
#: Clock skew tolerated for "not in the future" checks.
SKEW = timedelta(minutes=5)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def text(self, field: str, value: str, *, limit: int, required: bool = False) -> None:
        if required and not value.strip():
            self.add(field, "is required")
        elif len(value) > limit:
            self.add(field, f"is {len(value)} characters; the limit is {limit}")
        elif "\x00" in value:
            self.add(field, "contains a NUL character")

    def code(self, field: str, value: str, allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        if not value:
            self.add(field, f"is required; one of: {', '.join(allowed)}")
        elif value not in allowed:
            self.add(field, f"'{value}' is not in the organisation's catalogue; one of: {', '.join(allowed)}")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidTicket(self.items)


def check_request_id(request_id: str, *, required: bool) -> None:
    if not request_id and not required:
        return
    if not REQUEST_ID.match(request_id):
        raise InvalidTicket(
            [FieldViolation("request_id", "is required: 1–128 characters of letters, digits and . _ : -")]
        )


def validate_submission(sub: TicketSubmission, org: Organisation, now: datetime) -> None:
    lim = org.limits
    v = _Violations()
    v.text("title", sub.title, limit=lim.title_chars, required=True)
    v.text("description", sub.description, limit=lim.description_chars, required=True)
    v.text("requester.name", sub.requester.name, limit=lim.text_field_chars, required=True)
    v.text("requester.id", sub.requester.id, limit=lim.text_field_chars)
    v.text("requester.department", sub.requester.department, limit=lim.text_field_chars)
    v.text("requester.company", sub.requester.company, limit=lim.text_field_chars)
    _check_contact(v, sub, lim)
    v.code("channel", sub.channel, org.channels)
    v.code("problem_type", sub.problem_type, org.problem_types)
    v.code("impact_scope", sub.impact_scope, org.impact_scopes)
    v.code("urgency", sub.urgency, org.urgencies)
    _check_environment(v, "environment", sub.environment, lim)
    if sub.occurred_at is not None and sub.occurred_at > now + SKEW:
        v.add("occurred_at", "is in the future")
    if sub.expected_resolution_at is not None and sub.expected_resolution_at < now - SKEW:
        v.add("expected_resolution_at", "is in the past")
    _check_steps(v, "reproduction_steps", sub.reproduction_steps, lim)
    _check_attachments(v, "attachments", sub.attachments, lim)
    if len(sub.labels) > lim.labels:
        v.add("labels", f"has {len(sub.labels)} labels; the limit is {lim.labels}")
    for i, label in enumerate(sub.labels):
        v.text(f"labels[{i}]", label, limit=lim.label_chars, required=True)
    v.raise_if_any()


def validate_supplement(sup: Supplement, org: Organisation, *, existing_attachments: int) -> None:
    lim = org.limits
    v = _Violations()
    v.text("additional_description", sup.additional_description, limit=lim.description_chars)
    _check_environment(v, "environment", sup.environment, lim)
    _check_steps(v, "reproduction_steps", sup.reproduction_steps, lim)
    _check_attachments(v, "attachments", sup.attachments, lim, already=existing_attachments)
    if not (
        sup.additional_description.strip()
        or sup.reproduction_steps
        or sup.attachments
        or sup.environment != Environment()
    ):
        v.add("additional_description", "a supplement must add something: text, environment, steps or attachments")
    v.raise_if_any()


def validate_comment(body: str, attachments: Sequence[NewAttachment], org: Organisation, *, existing: int) -> None:
    v = _Violations()
    v.text("body", body, limit=org.limits.comment_chars, required=True)
    _check_attachments(v, "attachments", attachments, org.limits, already=existing)
    v.raise_if_any()


def _check_contact(v: _Violations, sub: TicketSubmission, lim: Limits) -> None:
    c = sub.contact
    if not (c.phone.strip() or c.email.strip() or c.im.strip()):
        v.add("contact", "at least one of contact.phone, contact.email or contact.im is required")
    if c.email and not EMAIL.match(c.email):
        v.add("contact.email", f"'{c.email[:80]}' is not an e-mail address")
    if c.phone and not PHONE.match(c.phone):
        v.add("contact.phone", f"'{c.phone[:40]}' is not a phone number")
    v.text("contact.im", c.im, limit=lim.text_field_chars)


def _check_environment(v: _Violations, prefix: str, env: Environment, lim: Limits) -> None:
    for name in ("device", "os", "software", "software_version"):
        v.text(f"{prefix}.{name}", getattr(env, name), limit=lim.text_field_chars)


def _check_steps(v: _Violations, field: str, steps: Sequence[str], lim: Limits) -> None:
    if len(steps) > lim.reproduction_steps:
        v.add(field, f"has {len(steps)} steps; the limit is {lim.reproduction_steps}")
    for i, step in enumerate(steps):
        v.text(f"{field}[{i}]", step, limit=lim.reproduction_step_chars, required=True)


def _check_attachments(
    v: _Violations, field: str, attachments: Sequence[NewAttachment], lim: Limits, *, already: int = 0
) -> None:
    if already + len(attachments) > lim.attachments:
        v.add(field, f"a ticket can hold {lim.attachments} attachments; this would make {already + len(attachments)}")
    total = 0
    for i, a in enumerate(attachments):
        at = f"{field}[{i}]"
        total += len(a.content)
        name = a.file_name
        if not name.strip():
            v.add(f"{at}.file_name", "is required")
        elif len(name) > 255 or any(ch in name for ch in "/\\\x00") or name in {".", ".."}:
            v.add(f"{at}.file_name", "must be a plain file name of at most 255 characters, without / or \\")
        if not a.content:
            v.add(f"{at}.content", "is empty")
        elif len(a.content) > lim.attachment_bytes:
            v.add(f"{at}.content", f"is {_mib(len(a.content))}; the limit is {_mib(lim.attachment_bytes)} per file")
        if a.kind not in ATTACHMENT_KINDS:
            v.add(f"{at}.kind", f"'{a.kind[:40]}' is not one of {', '.join(sorted(ATTACHMENT_KINDS))}")
        if len(a.content_type) > 255:
            v.add(f"{at}.content_type", "is longer than 255 characters")
    if total > lim.attachments_total_bytes:
        v.add(field, f"attachments total {_mib(total)}; the limit is {_mib(lim.attachments_total_bytes)}")


def missing_information(
    required: Sequence[str],
    *,
    environment: Environment,
    reproduction_steps: Sequence[str],
    attachment_kinds: Iterable[str],
    occurred_at: datetime | None,
) -> list[str]:
    """The required items (as configured for the problem type) that the ticket still lacks."""
    kinds = set(attachment_kinds)
    missing: list[str] = []
    for item in required:
        if item.startswith("attachment:"):
            wanted = set(item.removeprefix("attachment:").split("|"))
            present = bool(kinds & wanted)
        elif item.startswith("environment."):
            present = bool(getattr(environment, item.removeprefix("environment."), "").strip())
        elif item == "reproduction_steps":
            present = bool(reproduction_steps)
        elif item == "occurred_at":
            present = occurred_at is not None
        else:
            raise ValueError(f"unknown required-information item {item!r}")
        if not present:
            missing.append(item)
    return missing


REQUIRED_INFO_ITEM = re.compile(
    r"^(attachment:[a-z]+(\|[a-z]+)*|environment\.(device|os|software|software_version)|reproduction_steps|occurred_at)$"
)
