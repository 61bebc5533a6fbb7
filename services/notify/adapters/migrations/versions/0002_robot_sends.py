"""Rate-limited chat robots: the messages each was sent in the last minute, counted by every
replica before it sends to that robot (domain/throttle.py).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_robot_sends",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("organization", sa.String(length=64), nullable=False),
        sa.Column("webhook", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_notify_robot_sends_robot", "notify_robot_sends", ["organization", "webhook", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notify_robot_sends_robot", table_name="notify_robot_sends")
    op.drop_table("notify_robot_sends")
