"""The CompleteTask request that completed a task, so that its retry gets the same answer
(CompleteTaskRequest.request_id); "" for tasks completed before.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "workflow_tasks", sa.Column("completion_request_id", sa.String(length=200), server_default="", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("workflow_tasks", "completion_request_id")
