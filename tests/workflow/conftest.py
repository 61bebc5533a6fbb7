"""The workflow service under test: the real service in this process on real PostgreSQL and NATS
JetStream, called over a real gRPC socket, its time driven by a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from nats.aio.client import Client
from supportflow.workflow.v1 import workflow_pb2_grpc

from services.kit.auth import mint_token
from services.workflow.bootstrap import Workflow, bootstrap
from services.workflow.settings import WorkflowSettings

SECRET = "test-secret-for-supportflow-tests-0123456789"
BUNDLES = Path(__file__).parent / "bundles"


class MovableClock:
    """The service's clock: starts at a fixed Monday morning and moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> None:
        self.current += by


def workflow_settings(database_url: str, nats_url: str, **overrides: Any) -> WorkflowSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "nats_url": nats_url,
        "jwt_secret": SECRET,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "outbox_poll_seconds": 0.2,
        "scheduler_poll_seconds": 0.05,
        "default_bundle_dir": BUNDLES / "mini",
    }
    return WorkflowSettings(**{**values, **overrides})


def token(
    sub: str = "agent-1", org: str = "acme", roles: tuple[str, ...] = ("agent",), groups: tuple[str, ...] = ()
) -> str:
    return mint_token(secret=SECRET, subject=sub, org=org, roles=roles, groups=groups)


def auth(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai


@pytest.fixture
async def workflow(fresh_database_url: str, nats_url: str, clock: MovableClock) -> AsyncIterator[Workflow]:
    service = bootstrap(workflow_settings(fresh_database_url, nats_url), clock=clock)
    await service.start()
    yield service
    await service.host.shutdown()


@pytest.fixture
async def stub(workflow: Workflow) -> AsyncIterator[workflow_pb2_grpc.WorkflowServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{workflow.host.port}") as channel:
        yield workflow_pb2_grpc.WorkflowServiceStub(channel)


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
