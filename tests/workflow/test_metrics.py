"""Operators see the scheduler's timer lateness and the instances started on the Prometheus
endpoint, as a scraper would read them over HTTP."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from nats.aio.client import Client

from services.workflow.bootstrap import Workflow, bootstrap
from tests.workflow.conftest import MovableClock, workflow_settings
from tests.workflow.intake_side import StreamTail, submit, ticket_number, until


@pytest.fixture
async def workflow(fresh_database_url: str, nats_url: str, clock: MovableClock) -> AsyncIterator[Workflow]:
    service = bootstrap(workflow_settings(fresh_database_url, nats_url, metrics_port=0), clock=clock)
    await service.start()
    yield service
    await service.host.shutdown()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


async def test_timer_lateness_and_started_instances_are_exported(
    workflow: Workflow, nc: Client, clock: MovableClock
) -> None:
    port = workflow.metrics.port
    before = await asyncio.to_thread(scrape, port)
    assert sample(before, "supportflow_workflow_timer_lateness_seconds_count") == 0
    tail = await StreamTail.open(nc)
    number = ticket_number()
    await submit(nc, number, urgency="low")
    await until(
        lambda: asyncio.to_thread(scrape, port),
        lambda t: sample(t, "supportflow_workflow_instances_started_total") >= 1,
    )

    clock.advance(timedelta(hours=9))  # past the 80 % warning and the 8-hour target
    await tail.wait_for(number, "sla.breached")
    after = await until(
        lambda: asyncio.to_thread(scrape, port),
        lambda t: sample(t, "supportflow_workflow_timer_lateness_seconds_count") >= 1,
    )
    assert sample(after, "supportflow_workflow_timer_lateness_seconds_count") >= 1
    assert sample(after, "supportflow_workflow_instances_started_total") == 1
    # The test clock jumped 9 hours past both checks at once: the lateness reported is that jump.
    assert sample(after, "supportflow_workflow_timer_lateness_seconds_sum") > 3600
