"""Intake's initial schema: tickets, counters, attachments, comments, timeline, requests, outbox,
and the consumer's processed-events and dead-letter tables.

Frozen: this revision spells out the schema as it was first released. Later changes go into new
revisions; tests/intake/test_migrations.py fails when tables.py and the revisions disagree.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("stream_sequence", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "intake_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "intake_processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "intake_requests",
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("result_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("organization", "request_id"),
    )
    op.create_table(
        "intake_ticket_counters",
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last_serial", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organization", "day"),
    )
    op.create_table(
        "intake_tickets",
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("requester_id", sa.String(length=200), nullable=False),
        sa.Column("requester", sa.JSON(), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("problem_type", sa.String(length=64), nullable=False),
        sa.Column("impact_scope", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("reproduction_steps", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("missing_info", sa.JSON(), nullable=False),
        sa.Column("related_ticket_numbers", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expected_resolution_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.String(length=4), nullable=True),
        sa.Column("category", sa.String(length=64), server_default="", nullable=False),
        sa.Column("team", sa.String(length=64), server_default="", nullable=False),
        sa.Column("assignee", sa.String(length=200), server_default="", nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=True),
        sa.Column("rating_comment", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("ticket_number"),
    )
    op.create_index(
        "ix_intake_tickets_org_submitted",
        "intake_tickets",
        ["organization", "submitted_at", "ticket_number"],
        unique=False,
    )
    op.create_index(
        "ix_intake_tickets_requester", "intake_tickets", ["organization", "requester_id", "submitted_at"], unique=False
    )
    op.create_table(
        "intake_timeline",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("actor_subject", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(op.f("ix_intake_timeline_ticket_number"), "intake_timeline", ["ticket_number"], unique=False)
    op.create_table(
        "intake_attachments",
        sa.Column("attachment_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("comment_id", sa.String(length=36), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_number"],
            ["intake_tickets.ticket_number"],
        ),
        sa.PrimaryKeyConstraint("attachment_id"),
    )
    op.create_index(op.f("ix_intake_attachments_ticket_number"), "intake_attachments", ["ticket_number"], unique=False)
    op.create_table(
        "intake_comments",
        sa.Column("comment_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("author_subject", sa.String(length=200), nullable=False),
        sa.Column("author_role", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_number"],
            ["intake_tickets.ticket_number"],
        ),
        sa.PrimaryKeyConstraint("comment_id"),
    )
    op.create_index(op.f("ix_intake_comments_ticket_number"), "intake_comments", ["ticket_number"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_intake_comments_ticket_number"), table_name="intake_comments")
    op.drop_table("intake_comments")
    op.drop_index(op.f("ix_intake_attachments_ticket_number"), table_name="intake_attachments")
    op.drop_table("intake_attachments")
    op.drop_index(op.f("ix_intake_timeline_ticket_number"), table_name="intake_timeline")
    op.drop_table("intake_timeline")
    op.drop_index("ix_intake_tickets_requester", table_name="intake_tickets")
    op.drop_index("ix_intake_tickets_org_submitted", table_name="intake_tickets")
    op.drop_table("intake_tickets")
    op.drop_table("intake_ticket_counters")
    op.drop_table("intake_requests")
    op.drop_table("intake_processed_events")
    op.drop_table("intake_outbox")
    op.drop_table("intake_dead_letters")
