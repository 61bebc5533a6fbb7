"""An index for listing an organisation's notifications by status, newest first
(ListNotifications with statuses only, e.g. every dead one).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_notify_notifications_org_status",
        "notify_notifications",
        ["organization", "status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notify_notifications_org_status", table_name="notify_notifications")
