"""Instance states are stored lz4-compressed on PostgreSQL where the server has lz4 (migration
0002): pglz was most of the database's work for each started instance."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import text

from services.kit.db import create_engine
from services.kit.migrate import upgrade
from services.workflow.adapters import tables
from services.workflow.bootstrap import MIGRATIONS


async def test_instance_states_are_compressed_with_lz4_where_the_server_has_it(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await upgrade(engine, MIGRATIONS, "workflow")
        state = json.dumps({"tasks": {str(i): {"state": 64, "data": {"title": f"ticket {i}"}} for i in range(400)}})
        async with engine.begin() as conn:
            await conn.execute(
                tables.instances.insert().values(
                    ticket_number="TS1",
                    organization="acme",
                    deployment_id="d",
                    process_id="p",
                    state="running",
                    engine_state=state.encode(),
                    revision=0,
                    started_at=datetime.now(UTC),
                    variables={},
                    active_steps=[],
                    routing={},
                    incidents=[],
                )
            )
            lz4 = await conn.scalar(
                text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            )
            method = await conn.scalar(text("SELECT pg_column_compression(engine_state) FROM workflow_instances"))
        assert method == ("lz4" if lz4 else "pglz")
    finally:
        await engine.dispose()
