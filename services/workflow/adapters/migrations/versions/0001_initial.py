"""Workflow's initial schema (temporary: creates the declared tables; frozen into explicit DDL
before the first release, as intake's 0001 was).

Revision ID: 0001
"""

from alembic import op

from services.workflow.adapters import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables.metadata.create_all(op.get_bind())


def downgrade() -> None:
    tables.metadata.drop_all(op.get_bind())
