"""An index for listing an organisation's instances by state, most recently started first
(ListProcessInstances, e.g. the instances stopped at an incident).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_workflow_instances_org_state", "workflow_instances", ["organization", "state", "started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_instances_org_state", table_name="workflow_instances")
