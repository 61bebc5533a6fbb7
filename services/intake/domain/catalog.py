"""What an organisation configures: its catalogues (problem types, channels, impact scopes,
urgencies), what information each problem type needs, limits, time zone and ticket prefix.

Loaded from a file by `services.intake.adapters.catalog_file`; plain data here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from services.intake.domain.errors import InvalidTicket
from services.kit.errors import FieldViolation

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    title_chars: int = 200
    description_chars: int = 20_000
    text_field_chars: int = 200
    attachments: int = 20
    attachment_bytes: int = 10 * MiB
    attachments_total_bytes: int = 40 * MiB
    labels: int = 20
    label_chars: int = 50
    reproduction_steps: int = 50
    reproduction_step_chars: int = 2_000
    comment_chars: int = 10_000


@dataclass(frozen=True, slots=True)
class ProblemType:
    code: str
    label: str
    #: Items whose absence flags the ticket `info_incomplete` (SOP §2): `environment.<field>`,
    #: `reproduction_steps`, `occurred_at`, or `attachment:<kind>|<kind>` (any of those kinds).
    required_info: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    time_zone: ZoneInfo
    ticket_prefix: str = "TS"
    channels: frozenset[str] = frozenset()
    problem_types: Mapping[str, ProblemType] = field(default_factory=dict)
    impact_scopes: frozenset[str] = frozenset()
    urgencies: frozenset[str] = frozenset()
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class Catalog:
    organisations: Mapping[str, Organisation]

    def organisation(self, org: str, *, field_path: str = "organization") -> Organisation:
        try:
            return self.organisations[org]
        except KeyError:
            known = ", ".join(sorted(self.organisations)) or "none configured"
            raise InvalidTicket(
                [FieldViolation(field_path, f"unknown organisation '{org}' (known: {known})")]
            ) from None
