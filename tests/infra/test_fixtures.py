"""The test infrastructure itself, exercised against the real servers and processes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import nats
import pytest
from grpc_health.v1 import health_pb2
from nats.js.api import StorageType
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.containers import docker_available
from tests.support.fixtures import ServiceFactory
from tests.support.nats import NatsServer
from tests.support.postgres import start_throwaway_cluster
from tests.support.processes import ServiceStartError, free_port, grpc_health_status

SERVING = health_pb2.HealthCheckResponse.SERVING
HEALTH_MODULE = "tests.infra.health_server"


async def scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


def test_docker_check_is_fast() -> None:
    started = time.monotonic()
    docker_available()
    assert time.monotonic() - started < 1.0


# --- PostgreSQL ----------------------------------------------------------------------------------


async def test_database_url_answers_a_query(database_url: str) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    assert "PostgreSQL" in str(await scalar(database_url, "SELECT version()"))
    assert str(await scalar(database_url, "SELECT current_database()")).startswith("sf_test_")


async def test_fresh_database_is_new_and_empty(fresh_database_url: str, database_url: str) -> None:
    assert fresh_database_url != database_url
    tables = await scalar(
        fresh_database_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert tables == 0


async def test_sqlite_url_works(sqlite_url: str) -> None:
    assert sqlite_url.startswith("sqlite+aiosqlite:////")
    assert await scalar(sqlite_url, "SELECT 41 + 1") == 42


@pytest.mark.fault
async def test_throwaway_cluster_survives_kill_and_restart(tmp_path: Path) -> None:
    cluster = start_throwaway_cluster(tmp_path)
    try:
        url = cluster.server.url("postgres")
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE kept (v text)"))
            await conn.execute(text("INSERT INTO kept VALUES ('before the crash')"))
        await engine.dispose()

        cluster.kill()
        assert not cluster.running
        assert not cluster.server.ping(timeout=1.0)

        cluster.start()  # same port and data directory: crash recovery replays the WAL
        assert await scalar(url, "SELECT v FROM kept") == "before the crash"
    finally:
        cluster.destroy()
    assert not cluster.data_dir.exists()


# --- NATS JetStream ------------------------------------------------------------------------------


async def test_jetstream_deduplicates_by_msg_id(nats_url: str) -> None:
    stream = f"infra_{uuid.uuid4().hex}"
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        headers = {"Nats-Msg-Id": "same-id"}
        first = await js.publish(f"{stream}.x", b"one", headers=headers)
        second = await js.publish(f"{stream}.x", b"two", headers=headers)
        assert not first.duplicate
        assert second.duplicate
        assert (await js.stream_info(stream)).state.messages == 1
    finally:
        await nc.close()


@pytest.mark.fault
async def test_nats_restart_keeps_file_stream(own_nats_server: NatsServer) -> None:
    url = own_nats_server.url
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="kept", subjects=["kept.>"], storage=StorageType.FILE)
        for i in range(3):
            await js.publish("kept.x", f"m{i}".encode())
    finally:
        await nc.close()

    own_nats_server.restart()
    assert own_nats_server.url == url

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info("kept")).state.messages == 3
        assert (await js.get_msg("kept", 3)).data == b"m2"
    finally:
        await nc.close()


@pytest.mark.fault
async def test_nats_kill_then_start(own_nats_server: NatsServer) -> None:
    own_nats_server.kill()
    assert not own_nats_server.running
    own_nats_server.start()
    nc = await nats.connect(own_nats_server.url)
    try:
        assert (await nc.jetstream().account_info()).streams == 0
    finally:
        await nc.close()


# --- service processes ---------------------------------------------------------------------------


@pytest.mark.e2e
def test_service_process_start_kill_restart(service_process_factory: ServiceFactory) -> None:
    service = service_process_factory("health", HEALTH_MODULE, {"PORT": "{grpc_port}"})
    assert service.running
    assert grpc_health_status(service.address) == SERVING
    first_pid = service.pid

    assert service.kill() == -9
    assert service.returncode == -9
    assert grpc_health_status(service.address, timeout=0.5) is None

    service.restart()
    assert service.pid != first_pid
    assert grpc_health_status(service.address) == SERVING

    assert service.terminate() == 0  # the module handles SIGTERM and exits cleanly
    assert "health server stopping" in service.log_tail()


@pytest.mark.e2e
def test_service_process_reports_failed_start(service_process_factory: ServiceFactory) -> None:
    port = free_port()
    with pytest.raises(ServiceStartError, match="exited with code 1") as failure:
        service_process_factory("broken", HEALTH_MODULE, {"PORT": "not-a-port"}, grpc_port=port)
    assert "invalid literal for int()" in str(failure.value)  # the log tail is in the message
