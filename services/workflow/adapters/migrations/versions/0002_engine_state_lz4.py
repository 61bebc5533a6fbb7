"""Instance states are compressed with lz4 instead of PostgreSQL's default pglz.

Every step rewrites an instance's state (about 25 KB of JSON for the default process, stored
out of line and compressed). pglz took most of the database's CPU time per started instance
and the service waits for it in each transaction; lz4 takes about a third of it and stores the
default process's states a little smaller. Values written before keep their compression (both
read the same). PostgreSQL only, and only where the server was built with lz4 (the choices of
`default_toast_compression` say so); SQLite and other servers keep what they had.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(found)


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE workflow_instances ALTER COLUMN engine_state SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE workflow_instances ALTER COLUMN engine_state SET COMPRESSION default")
