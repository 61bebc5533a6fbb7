"""The workflow service killed with SIGKILL in the middle of a load loses no ticket, starts no
instance twice and fires no SLA breach twice: real OS processes, real PostgreSQL and JetStream."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from sqlalchemy import column, func, select, table
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.workflow.conftest import BUNDLES, SECRET
from tests.workflow.intake_side import StreamTail, submit, ticket_number, until

pytestmark = pytest.mark.fault

TICKETS = 120


async def count(database_url: str, sql_table: str, where: str = "") -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(table(sql_table))
            if where:
                name, value = where.split("=")
                query = query.where(column(name) == value)
            return int(await conn.scalar(query) or 0)
    finally:
        await engine.dispose()


def fast_breach_bundle(tmp_path: Path) -> Path:
    """The mini bundle with a 3-second resolve target, so every ticket breaches during the test."""
    target = tmp_path / "bundle"
    shutil.copytree(BUNDLES / "mini", target)
    dmn = target / "priority.dmn"
    dmn.write_text(dmn.read_text().replace('"PT4H"', '"PT3S"').replace('"PT8H"', '"PT3S"'))
    return target


async def test_sigkill_mid_load_loses_nothing_and_repeats_nothing(
    fresh_database_url: str, own_nats_server: NatsServer, service_process_factory: ServiceFactory, tmp_path: Path
) -> None:
    # A stream of its own: the session's holds other tests' submissions, which a first workflow
    # consumer on this fresh database would (rightly) start instances for.
    nc = await nats.connect(own_nats_server.url)
    try:
        await _sigkill_mid_load(fresh_database_url, own_nats_server.url, nc, service_process_factory, tmp_path)
    finally:
        await nc.close()


async def _sigkill_mid_load(
    fresh_database_url: str, nats_url: str, nc: Client, service_process_factory: ServiceFactory, tmp_path: Path
) -> None:
    env = {
        "SUPPORTFLOW_ENVIRONMENT": "test",
        "SUPPORTFLOW_DATABASE_URL": fresh_database_url,
        "SUPPORTFLOW_NATS_URL": nats_url,
        "SUPPORTFLOW_JWT_SECRET": SECRET,
        "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
        "SUPPORTFLOW_GRPC_PORT": "{grpc_port}",
        "SUPPORTFLOW_DEFAULT_BUNDLE_DIR": str(fast_breach_bundle(tmp_path)),
        "SUPPORTFLOW_SCHEDULER_POLL_SECONDS": "0.1",
        "SUPPORTFLOW_OUTBOX_POLL_SECONDS": "0.2",
    }
    tail = await StreamTail.open(nc)
    workflow = service_process_factory("workflow", "services.workflow", env)
    numbers = [ticket_number() for _ in range(TICKETS)]
    for number in numbers:
        await submit(nc, number)

    # Kill it while it is busy starting instances (and, soon after, breaching their clocks).
    started = await until(lambda: count(fresh_database_url, "workflow_instances"), lambda n: n >= TICKETS // 3)
    assert 0 < started < TICKETS, f"the kill should land mid-load ({started} of {TICKETS} started)"
    workflow.kill()
    await asyncio.sleep(1.0)
    workflow.start()

    assert await until(lambda: count(fresh_database_url, "workflow_instances"), lambda n: n == TICKETS, 60) == TICKETS

    async def breached() -> Counter[str]:
        events = await tail.read()
        return Counter(e.ticket_number for e in events if e.type == "sla.breached")

    seen = await until(breached, lambda c: len(c) == TICKETS, 60)
    assert set(seen) == set(numbers), f"{TICKETS - len(seen)} tickets never breached"
    assert all(n == 1 for n in seen.values()), f"breached more than once: {[t for t, n in seen.items() if n > 1]}"

    events = await tail.read()
    started_events = Counter(
        e.ticket_number for e in events if e.type == "task.created" and e.task_created.element_id == "Task_Handle"
    )
    assert started_events == Counter(numbers), "each ticket's first task announced exactly once"
    tier2 = Counter(
        e.ticket_number for e in events if e.type == "task.created" and e.task_created.element_id == "Task_Tier2"
    )
    assert tier2 == Counter(numbers), "each breach escalated exactly once"
    assert await count(fresh_database_url, "workflow_tasks") == 2 * TICKETS
