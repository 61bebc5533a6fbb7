from alembic import context

from services.kit.migrate import run_migrations_online
from services.notify.adapters.tables import metadata

run_migrations_online(context, metadata)
