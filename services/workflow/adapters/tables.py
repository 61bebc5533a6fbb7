"""Workflow's tables (SQLAlchemy Core). Owned by the workflow service alone; migrated by its Alembic history."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.kit.consumer import dead_letters_table, processed_events_table
from services.kit.outbox import outbox_table

metadata = MetaData()

#: One row per deployed bundle version of an organisation; the files are kept to re-parse the specs.
deployments = Table(
    "workflow_deployments",
    metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("organization", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("main_process", String(200), nullable=False),
    Column("process_ids", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("deployed_by", String(200), nullable=False),
    Column("deployed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organization", "version", name="uq_workflow_deployments_org_version"),
)

deployment_files = Table(
    "workflow_deployment_files",
    metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("path", String(300), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

#: One process instance per ticket. `engine_state` is SpiffWorkflow's state without the spec;
#: `wake_at` is the earliest moment a timer or SLA clock needs the instance (indexed for the scheduler).
instances = Table(
    "workflow_instances",
    metadata,
    Column("ticket_number", String(32), primary_key=True),
    Column("organization", String(64), nullable=False),
    Column("deployment_id", String(36), nullable=False),
    Column("process_id", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("engine_state", LargeBinary, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("wake_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("variables", JSON, nullable=False),
    Column("active_steps", JSON, nullable=False),
    Column("routing", JSON, nullable=False),
    Column("incidents", JSON, nullable=False),
    Index("ix_workflow_instances_wake_at", "wake_at"),
    Index("ix_workflow_instances_org_state", "organization", "state", "started_at"),
)

tasks = Table(
    "workflow_tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("ticket_number", String(32), nullable=False, index=True),
    Column("organization", String(64), nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("name", String(300), nullable=False),
    Column("state", String(16), nullable=False),
    Column("assignee", String(200), nullable=False),
    Column("candidate_groups", JSON, nullable=False),
    Column("excluded_subjects", JSON, nullable=False),
    Column("exclude_performers_of", JSON, nullable=False),
    Column("form", JSON, nullable=False),
    Column("priority", String(4), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("completed_by", String(200), nullable=True),
    Column("result", JSON, nullable=True),
    Column("completion_request_id", String(200), nullable=False, server_default=""),
    Index("ix_workflow_tasks_org_state", "organization", "state", "created_at"),
)

history = Table(
    "workflow_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("ticket_number", String(32), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_subject", String(200), nullable=False),
    Column("actor_role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("element_id", String(200), nullable=False),
    Column("detail", Text, nullable=False),
)

sla_clocks = Table(
    "workflow_sla_clocks",
    metadata,
    Column("ticket_number", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("calendar", String(64), nullable=False),
    Column("target", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("budget_seconds", Float, nullable=False),
    Column("remaining_seconds", Float, nullable=False),
    Column("running_since", DateTime(timezone=True), nullable=True),
    Column("paused_at", DateTime(timezone=True), nullable=True),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
    Column("warned", Boolean, nullable=False),
)

#: CorrelateMessage's message ids: a message delivered twice takes effect once.
messages = Table(
    "workflow_messages",
    metadata,
    Column("organization", String(64), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("ticket_number", String(32), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata, "workflow")
processed_events = processed_events_table(metadata, "workflow")
dead_letters = dead_letters_table(metadata, "workflow")
