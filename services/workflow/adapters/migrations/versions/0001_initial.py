"""Workflow's initial schema: deployments and their files, instances, tasks, history, SLA clocks,
message ids, and the outbox / processed-events / dead-letter tables.

Frozen: this revision spells out the schema as first released. Later changes go into new
revisions; tests/workflow/test_migrations.py fails when tables.py and the revisions disagree.

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
        "workflow_dead_letters",
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
        "workflow_deployment_files",
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id", "path"),
    )
    op.create_table(
        "workflow_deployments",
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("main_process", sa.String(length=200), nullable=False),
        sa.Column("process_ids", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("deployed_by", sa.String(length=200), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deployment_id"),
        sa.UniqueConstraint("organization", "version", name="uq_workflow_deployments_org_version"),
    )
    op.create_table(
        "workflow_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_subject", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("element_id", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_workflow_history_ticket_number"), "workflow_history", ["ticket_number"], unique=False)
    op.create_table(
        "workflow_instances",
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=36), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("engine_state", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("active_steps", sa.JSON(), nullable=False),
        sa.Column("routing", sa.JSON(), nullable=False),
        sa.Column("incidents", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_number"),
    )
    op.create_index("ix_workflow_instances_wake_at", "workflow_instances", ["wake_at"], unique=False)
    op.create_table(
        "workflow_messages",
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization", "message_id"),
    )
    op.create_table(
        "workflow_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "workflow_processed_events",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "workflow_sla_clocks",
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("calendar", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("budget_seconds", sa.Float(), nullable=False),
        sa.Column("remaining_seconds", sa.Float(), nullable=False),
        sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_number", "name"),
    )
    op.create_table(
        "workflow_tasks",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("element_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=False),
        sa.Column("candidate_groups", sa.JSON(), nullable=False),
        sa.Column("excluded_subjects", sa.JSON(), nullable=False),
        sa.Column("exclude_performers_of", sa.JSON(), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("priority", sa.String(length=4), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index(
        "ix_workflow_tasks_org_state", "workflow_tasks", ["organization", "state", "created_at"], unique=False
    )
    op.create_index(op.f("ix_workflow_tasks_ticket_number"), "workflow_tasks", ["ticket_number"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_workflow_tasks_ticket_number"), table_name="workflow_tasks")
    op.drop_index("ix_workflow_tasks_org_state", table_name="workflow_tasks")
    op.drop_table("workflow_tasks")
    op.drop_table("workflow_sla_clocks")
    op.drop_table("workflow_processed_events")
    op.drop_table("workflow_outbox")
    op.drop_table("workflow_messages")
    op.drop_index("ix_workflow_instances_wake_at", table_name="workflow_instances")
    op.drop_table("workflow_instances")
    op.drop_index(op.f("ix_workflow_history_ticket_number"), table_name="workflow_history")
    op.drop_table("workflow_history")
    op.drop_table("workflow_deployments")
    op.drop_table("workflow_deployment_files")
    op.drop_table("workflow_dead_letters")
