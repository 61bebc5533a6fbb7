"""The ticket's co-handlers (SOP §4: one main handler plus co-handlers when several teams work on
it), as the workflow's last assignment named them; empty for tickets assigned before.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("intake_tickets", sa.Column("co_handlers", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    op.drop_column("intake_tickets", "co_handlers")
