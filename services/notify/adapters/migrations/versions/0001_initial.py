"""Notify's initial schema: what it knows of each ticket, the notifications with their attempts,
and the consumer's processed-events and dead-letter tables.

Frozen: this revision spells out the schema as it was first released. Later changes go into new
revisions; tests/notify/test_migrations.py fails when tables.py and the revisions disagree.

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
        "notify_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notify_attempts_notification_id"), "notify_attempts", ["notification_id"], unique=False)
    op.create_table(
        "notify_dead_letters",
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
        "notify_notifications",
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("notice_key", sa.String(length=64), nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("webhook", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notification_id"),
        sa.UniqueConstraint("notice_key"),
    )
    op.create_index("ix_notify_notifications_due", "notify_notifications", ["channel", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_notify_notifications_recipient"), "notify_notifications", ["recipient"], unique=False)
    op.create_index(
        op.f("ix_notify_notifications_ticket_number"), "notify_notifications", ["ticket_number"], unique=False
    )
    op.create_table(
        "notify_processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "notify_tickets",
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization", "ticket_number"),
    )


def downgrade() -> None:
    op.drop_table("notify_tickets")
    op.drop_table("notify_processed_events")
    op.drop_index(op.f("ix_notify_notifications_ticket_number"), table_name="notify_notifications")
    op.drop_index(op.f("ix_notify_notifications_recipient"), table_name="notify_notifications")
    op.drop_index("ix_notify_notifications_due", table_name="notify_notifications")
    op.drop_table("notify_notifications")
    op.drop_table("notify_dead_letters")
    op.drop_index(op.f("ix_notify_attempts_notification_id"), table_name="notify_attempts")
    op.drop_table("notify_attempts")
