"""What a requester submits, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Requester:
    id: str
    name: str
    department: str = ""
    company: str = ""
    vip: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str = ""
    email: str = ""
    im: str = ""


@dataclass(frozen=True, slots=True)
class Environment:
    device: str = ""
    os: str = ""
    software: str = ""
    software_version: str = ""

    def merged(self, update: Environment) -> Environment:
        """Fields set in `update` win."""
        return Environment(
            device=update.device or self.device,
            os=update.os or self.os,
            software=update.software or self.software,
            software_version=update.software_version or self.software_version,
        )


@dataclass(frozen=True, slots=True)
class NewAttachment:
    file_name: str
    content_type: str
    content: bytes
    kind: str = "other"


@dataclass(frozen=True, slots=True)
class TicketSubmission:
    organization: str
    title: str
    requester: Requester
    contact: Contact
    channel: str
    problem_type: str
    impact_scope: str
    urgency: str
    description: str
    environment: Environment = Environment()
    occurred_at: datetime | None = None
    reproduction_steps: tuple[str, ...] = ()
    attachments: tuple[NewAttachment, ...] = ()
    expected_resolution_at: datetime | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Supplement:
    additional_description: str = ""
    environment: Environment = Environment()
    reproduction_steps: tuple[str, ...] = ()
    attachments: tuple[NewAttachment, ...] = ()
