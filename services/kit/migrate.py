"""Alembic migrations, one history per service (each service owns its tables and its own
`alembic_version_<service>` table), run programmatically against an async engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(script_location: Path, service: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    return cfg


async def upgrade(engine: AsyncEngine, script_location: Path, service: str, revision: str = "head") -> None:
    await _run(engine, script_location, service, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, script_location: Path, service: str, revision: str) -> None:
    """Roll back to `revision` ("base" removes the service's tables)."""
    await _run(engine, script_location, service, lambda cfg: command.downgrade(cfg, revision))


async def _run(engine: AsyncEngine, script_location: Path, service: str, step: Callable[[Config], None]) -> None:
    cfg = alembic_config(script_location, service)

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        step(cfg)

    async with engine.begin() as conn:
        await conn.run_sync(run)


def run_migrations_online(context: Any, target_metadata: MetaData) -> None:
    """The body of every service's `env.py` (`context` is `alembic.context`, an EnvironmentContext proxy)."""
    conn: Connection | None = context.config.attributes.get("connection")
    if conn is None:
        raise RuntimeError("run migrations with `supportflow migrate <service>`, not the alembic CLI")
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
