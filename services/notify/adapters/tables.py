"""Notify's tables (SQLAlchemy Core). Owned by notify alone; migrated by its Alembic history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from services.kit.consumer import dead_letters_table, processed_events_table

metadata = MetaData()

#: What notify knows about each ticket (ticket_context.TicketContext), kept from the events.
#: Keyed by organisation too: ticket numbers are counted per organisation and day, so two
#: organisations have a TS20261122000001 each.
tickets = Table(
    "notify_tickets",
    metadata,
    Column("organization", String(64), primary_key=True),
    Column("ticket_number", String(32), primary_key=True),
    Column("context", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: One row per (event, recipient, channel): `notice_key` is unique, so a redelivered event adds nothing.
notifications = Table(
    "notify_notifications",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("notice_key", String(64), nullable=False, unique=True),
    Column("organization", String(64), nullable=False),
    Column("ticket_number", String(32), nullable=False, index=True),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("recipient", String(320), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("template", String(100), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    #: What goes on the wire: the e-mail (RFC 5322 bytes) or the webhook request (JSON); empty in-app.
    Column("payload", LargeBinary, nullable=False),
    Column("webhook", String(100), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_notify_notifications_due", "channel", "next_attempt_at"),
    Index("ix_notify_notifications_org_status", "organization", "status", "created_at"),
)

attempts = Table(
    "notify_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("notification_id", String(36), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("error", Text, nullable=False),
)

#: One row per message sent to a rate-limited robot in the last minute (domain/throttle.py): what
#: every replica counts before it sends to that robot. Older rows are deleted as claims go by.
robot_sends = Table(
    "notify_robot_sends",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("organization", String(64), nullable=False),
    Column("webhook", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_notify_robot_sends_robot", "organization", "webhook", "at"),
)

processed_events = processed_events_table(metadata, "notify")
dead_letters = dead_letters_table(metadata, "notify")
