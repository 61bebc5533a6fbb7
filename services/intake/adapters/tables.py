"""Intake's tables (SQLAlchemy Core). Owned by intake alone; migrated by its Alembic history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from services.kit.consumer import dead_letters_table, processed_events_table
from services.kit.outbox import outbox_table

metadata = MetaData()

tickets = Table(
    "intake_tickets",
    metadata,
    Column("ticket_number", String(32), primary_key=True),
    Column("organization", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("title", String(500), nullable=False),
    Column("requester_id", String(200), nullable=False),
    Column("requester", JSON, nullable=False),
    Column("contact", JSON, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("problem_type", String(64), nullable=False),
    Column("impact_scope", String(64), nullable=False),
    Column("urgency", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("reproduction_steps", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("missing_info", JSON, nullable=False),
    Column("related_ticket_numbers", JSON, nullable=False),
    Column("occurred_at", DateTime(timezone=True)),
    Column("expected_resolution_at", DateTime(timezone=True)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("priority", String(4)),
    Column("category", String(64), nullable=False, server_default=""),
    Column("team", String(64), nullable=False, server_default=""),
    Column("assignee", String(200), nullable=False, server_default=""),
    Column("co_handlers", JSON, nullable=False, server_default="[]"),
    Column("rating", String(16)),
    Column("rating_comment", Text, nullable=False, server_default=""),
    Index("ix_intake_tickets_org_submitted", "organization", "submitted_at", "ticket_number"),
    Index("ix_intake_tickets_requester", "organization", "requester_id", "submitted_at"),
    Index("ix_intake_tickets_assignee", "organization", "assignee", "submitted_at"),
)

#: One row per organisation and day; incremented in the submitting transaction, so serials are
#: consecutive and a rolled-back submission leaves no gap.
ticket_counters = Table(
    "intake_ticket_counters",
    metadata,
    Column("organization", String(64), primary_key=True),
    Column("day", String(8), primary_key=True),
    Column("last_serial", BigInteger, nullable=False),
)

attachments = Table(
    "intake_attachments",
    metadata,
    Column("attachment_id", String(36), primary_key=True),
    Column("ticket_number", String(32), ForeignKey("intake_tickets.ticket_number"), nullable=False, index=True),
    Column("comment_id", String(36)),
    Column("file_name", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Column("position", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

comments = Table(
    "intake_comments",
    metadata,
    Column("comment_id", String(36), primary_key=True),
    Column("ticket_number", String(32), ForeignKey("intake_tickets.ticket_number"), nullable=False, index=True),
    Column("author_subject", String(200), nullable=False),
    Column("author_role", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

timeline = Table(
    "intake_timeline",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ticket_number", String(32), nullable=False, index=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("actor_subject", String(200), nullable=False),
    Column("actor_role", String(32), nullable=False),
    Column("summary", Text, nullable=False),
)

#: Idempotency keys of mutating calls: (organisation, request_id) → what it did.
requests = Table(
    "intake_requests",
    metadata,
    Column("organization", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("operation", String(32), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("ticket_number", String(32), nullable=False),
    Column("result_id", String(64), nullable=False),
)

outbox = outbox_table(metadata, "intake")
processed_events = processed_events_table(metadata, "intake")
dead_letters = dead_letters_table(metadata, "intake")

__all__ = [
    "attachments",
    "comments",
    "dead_letters",
    "metadata",
    "outbox",
    "processed_events",
    "requests",
    "ticket_counters",
    "tickets",
    "timeline",
]
