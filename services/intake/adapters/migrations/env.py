from alembic import context

from services.intake.adapters.tables import metadata
from services.kit.migrate import run_migrations_online

run_migrations_online(context, metadata)
