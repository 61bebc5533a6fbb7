"""Intake's initial schema: tickets, counters, attachments, comments, timeline, requests, outbox.

Revision ID: 0001
"""

from alembic import op

from services.intake.adapters import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The first revision creates the tables as declared; later revisions spell out their changes.
_TABLES = [
    tables.tickets,
    tables.ticket_counters,
    tables.attachments,
    tables.comments,
    tables.timeline,
    tables.requests,
    tables.outbox,
    tables.processed_events,
    tables.dead_letters,
]


def upgrade() -> None:
    bind = op.get_bind()
    for table in _TABLES:
        table.create(bind, checkfirst=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_TABLES):
        table.drop(bind)
