"""Two health answers, as an orchestrator asks them over a real gRPC socket: readiness (service "")
follows the dependencies; liveness stays SERVING through a dependency outage and turns NOT_SERVING
when a background worker dies — the two situations where restarting a replica is wrong and right."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.auth import TokenVerifier
from services.kit.rpc.server import LIVENESS, ServiceHost

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Database:
    """Stands in for the dependency the probe pings: up or down, as the test says."""

    def __init__(self) -> None:
        self.up = True

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("database unreachable")


@pytest.fixture
async def host() -> AsyncIterator[tuple[ServiceHost, Database, health_pb2_grpc.HealthStub]]:
    db = Database()
    verifier = TokenVerifier(secret="health-test-secret-0123456789-0123456789", issuer="t", audience="t")
    service = ServiceHost(
        name="probe-test",
        service_names=["supportflow.test.v1.Nothing"],
        verifier=verifier,
        max_message_bytes=1 << 20,
        shutdown_grace_seconds=1.0,
        probe=db.ping,
        probe_interval_seconds=0.05,
    )
    port = await service.start("127.0.0.1", 0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield service, db, health_pb2_grpc.HealthStub(channel)
    await service.shutdown()


async def status(stub: health_pb2_grpc.HealthStub, service: str) -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


async def eventually(stub: health_pb2_grpc.HealthStub, service: str, expected: int) -> None:
    for _ in range(100):
        if await status(stub, service) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health {service!r} never became {expected}")


async def test_a_database_outage_makes_the_replica_unready_but_keeps_it_alive(
    host: tuple[ServiceHost, Database, health_pb2_grpc.HealthStub],
) -> None:
    _, db, stub = host
    assert await status(stub, "") == SERVING
    assert await status(stub, LIVENESS) == SERVING

    db.up = False
    await eventually(stub, "", NOT_SERVING)
    assert await status(stub, LIVENESS) == SERVING, "an outage must not restart the replicas"

    db.up = True
    await eventually(stub, "", SERVING)


async def test_a_dead_background_worker_fails_liveness(
    host: tuple[ServiceHost, Database, health_pb2_grpc.HealthStub],
) -> None:
    service, _, stub = host
    crash = asyncio.Event()

    async def relay() -> None:
        await crash.wait()
        raise RuntimeError("relay bug")

    service.add_background("outbox-relay", relay(), stop=crash.set)
    assert await status(stub, LIVENESS) == SERVING
    crash.set()
    await eventually(stub, LIVENESS, NOT_SERVING)


async def test_workers_stopping_at_shutdown_are_not_a_failure(
    host: tuple[ServiceHost, Database, health_pb2_grpc.HealthStub],
) -> None:
    service, _, stub = host
    stop = asyncio.Event()
    service.add_background("consumer", stop.wait(), stop=stop.set)
    service.request_stop()
    stop.set()  # the worker returns as it is asked to at shutdown
    await asyncio.sleep(0.1)
    assert await status(stub, LIVENESS) == SERVING
