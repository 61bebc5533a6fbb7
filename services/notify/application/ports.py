"""What notify's use cases need from the outside world, as protocols (implemented in adapters/)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol, TypeAlias

from services.notify.domain.config import NotifyConfig
from services.notify.domain.delivery import Outcome, Status
from services.notify.domain.directory import OrgDirectory
from services.notify.domain.planning import PlannedNotice
from services.notify.domain.rules import Channel
from services.notify.domain.templates import RenderedMessage
from services.notify.domain.ticket_context import TicketContext

# -- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveConfig:
    """The configuration in force: the files' rules, directory and templates, plus what could not
    be resolved outside them (a webhook whose `url_env` names an unset environment variable)."""

    notify: NotifyConfig
    #: (organisation, webhook name) → why that webhook cannot be called.
    unusable_webhooks: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))


class ConfigSource(Protocol):
    @property
    def current(self) -> ActiveConfig: ...


# -- recording (inside the event consumer's transaction) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class NewNotification:
    notification_id: str
    notice_key: str
    organization: str
    ticket_number: str
    event_id: str
    event_type: str
    recipient: str
    channel: Channel
    template: str
    locale: str
    subject: str
    body: str
    #: What goes on the wire: the e-mail (RFC 5322 bytes) or the webhook's request body; empty in-app,
    #: and empty when the notice could not be built (then it is dead and cannot be retried).
    payload: bytes
    webhook: str | None
    status: Status
    next_attempt_at: datetime | None
    last_error: str
    created_at: datetime
    sent_at: datetime | None


class RecordStore(Protocol):
    """Ticket contexts and new notifications, in the transaction of the event being consumed."""

    async def load_context(self, organization: str, ticket_number: str) -> TicketContext | None:
        """The ticket's context, locked until the transaction ends (None for a ticket not seen yet)."""
        ...

    async def save_context(self, context: TicketContext, now: datetime, *, new: bool) -> None: ...

    async def add_notifications(self, notifications: Sequence[NewNotification]) -> list[NewNotification]:
        """Insert, skipping any whose notice_key is stored already; returns those inserted."""
        ...


class ComposeFailed(Exception):
    """The notice's wire form could not be built (e.g. an address the e-mail format refuses)."""


class Composer(Protocol):
    """Builds what goes on the wire when a notice is stored (adapters/formats.py)."""

    def email(self, notice: PlannedNotice, message: RenderedMessage, org: OrgDirectory, now: datetime) -> bytes: ...

    def webhook_body(self, notice: PlannedNotice, message: RenderedMessage, now: datetime) -> bytes: ...


class IdGenerator(Protocol):
    def new_id(self) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# -- delivering -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed notification on its way to a sender."""

    notification_id: str
    notice_key: str
    organization: str
    ticket_number: str
    event_type: str
    channel: Channel
    recipient: str
    webhook: str | None
    payload: bytes
    attempts: int
    last_error: str


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    at: datetime
    succeeded: bool
    error: str


class DeliveryFailed(Exception):
    """A send failed; the message says why, as operators read it in `last_error`. Retried with
    backoff (the receiving end may accept it later: an SMTP 4xx, an HTTP 429 or 5xx, a server
    down, a timeout). `retry_after`: the receiver asked us to wait at least this long before the
    next try (an HTTP Retry-After, a chat robot's rate-limit window)."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryRefused(DeliveryFailed):
    """The receiving end refused this message for good (an SMTP 5xx reply to the recipient, sender
    or content; a webhook's 4xx, a robot's error code about its settings): trying again cannot
    succeed, so the notice is dead at once. RetryNotification still sends it again once someone
    has fixed the cause (the address, the directory, the robot's settings)."""


class Sender(Protocol):
    """Puts one notification on the wire (SMTP, HTTP); raises DeliveryFailed, or DeliveryRefused
    when retrying cannot help (any other exception counts as a retried failure too)."""

    async def send(self, item: Outgoing) -> None: ...


# -- reading and retrying ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    notification_id: str
    organization: str
    ticket_number: str
    event_id: str
    event_type: str
    recipient: str
    channel: Channel
    template: str
    locale: str
    subject: str
    body: str
    status: Status
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    #: Whether it has a wire form (false when building it failed: it cannot be sent again).
    has_payload: bool
    attempt_log: tuple[DeliveryAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class NotificationQuery:
    organization: str
    ticket_number: str = ""
    recipient: str = ""
    statuses: tuple[Status, ...] = ()
    channel: Channel | None = None
    #: (created_at, notification_id) of the last notification of the previous page (newest first).
    after: tuple[datetime, str] | None = None
    limit: int = 50


#: (organisation, webhook) → the messages that robot takes in any 60 seconds (0: no limit).
MaxPerMinute: TypeAlias = Callable[[str, str], int]


class DeliveryStore(Protocol):
    """Each method is its own short transaction."""

    async def claim_due(
        self,
        channel: Channel,
        now: datetime,
        lease_until: datetime,
        limit: int,
        max_per_minute: MaxPerMinute | None = None,
    ) -> list[Outgoing]:
        """Up to `limit` notifications of `channel` waiting and due at `now`, oldest due first, made
        invisible to other claimers until `lease_until` (their next_attempt_at is pushed there).
        With `max_per_minute`, a robot's notices beyond what it takes now (domain/throttle.py)
        are not claimed: they wait, without using an attempt, until it takes more."""
        ...

    async def record_outcome(self, notification_id: str, outcome: Outcome, attempt: DeliveryAttempt) -> None: ...

    async def get(self, notification_id: str) -> Notification | None: ...

    async def requeue(self, notification_id: str, now: datetime, from_statuses: Sequence[Status]) -> bool:
        """Make it pending and due at `now` with its attempts reset, if its status is one of
        `from_statuses` (checked in the same transaction). True when it was requeued."""
        ...

    async def list(self, query: NotificationQuery) -> list[Notification]: ...
