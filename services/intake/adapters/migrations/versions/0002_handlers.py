"""Tickets by handler: the co-handlers (SOP §4: one main handler plus co-handlers when several
teams work on a ticket) as the workflow's last assignment named them, empty for tickets assigned
before; and an index for listing a handler's tickets (ListTicketsRequest.assignee).

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
    op.create_index(
        "ix_intake_tickets_assignee", "intake_tickets", ["organization", "assignee", "submitted_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_intake_tickets_assignee", table_name="intake_tickets")
    op.drop_column("intake_tickets", "co_handlers")
