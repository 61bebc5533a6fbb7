"""pytest fixtures over real PostgreSQL, NATS JetStream and service processes (no mocks).

Registered by ``tests/conftest.py`` through ``pytest_plugins``. Tests isolate by unique ids
(stream names, subjects, row keys), not by teardown; the exceptions are each session's own
database and the per-test ``fresh_database_url``.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.support.nats import NATS_URL_ENV, NatsServer
from tests.support.postgres import (
    PostgresServer,
    ThrowawayCluster,
    find_postgres,
    start_throwaway_cluster,
    stop_started_postgres,
    unique_database_name,
)
from tests.support.processes import ServiceProcess, free_port

# --- test outcome, so teardown can tell whether to print service logs -------------------------

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(node: pytest.Item) -> bool:
    return any(report.failed for report in node.stash.get(_REPORTS, {}).values())


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see :func:`tests.support.postgres.find_postgres`)."""
    yield find_postgres(tmp_path_factory.mktemp("postgres"))
    stop_started_postgres()


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """``postgresql+asyncpg://…/sf_test_<random>``: a database created for this session, dropped after."""
    name = unique_database_name()
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture
def fresh_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A brand-new empty database for one test (migrations, multi-process tests), dropped after."""
    name = unique_database_name()
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """``sqlite+aiosqlite:////<tmp>/sf.db``: a file database private to the test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'sf.db'}"


# --- NATS JetStream ------------------------------------------------------------------------------


@pytest.fixture
def own_postgres_cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server for one test, free to stop and start (fault tests); destroyed after."""
    server = start_throwaway_cluster(tmp_path / "postgres")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """Our own JetStream server for the whole session. Do not stop it; use ``own_nats_server``."""
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(request: pytest.FixtureRequest) -> str:
    """``$SUPPORTFLOW_TEST_NATS_URL`` if set (then no server is started), else ``nats_server.url``."""
    if url := os.environ.get(NATS_URL_ENV):
        return url
    server: NatsServer = request.getfixturevalue("nats_server")
    return server.url


@pytest.fixture
def own_nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A JetStream server for one test, free to stop, kill and restart; stopped after."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


# --- service processes ---------------------------------------------------------------------------


class ServiceFactory(Protocol):
    """Signature of the ``service_process_factory`` fixture's value."""

    def __call__(self, name: str, module: str, env: dict[str, str], grpc_port: int | None = None) -> ServiceProcess: ...


@pytest.fixture
def service_process_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start services as OS processes: ``factory(name, module, env, grpc_port=None)``.

    A free port is picked when ``grpc_port`` is None; the literal ``{grpc_port}`` in any env
    value is replaced by the port, so a service can be told where to listen, e.g.
    ``factory("intake", "services.intake", {"SF_GRPC_PORT": "{grpc_port}"})``. The process is
    started and SERVING on return; logs go to ``tmp_path/<name>.log``. All are terminated
    after the test, and their log tails printed if the test failed.
    """
    started: list[ServiceProcess] = []

    def factory(name: str, module: str, env: dict[str, str], grpc_port: int | None = None) -> ServiceProcess:
        port = grpc_port or free_port()
        env = {key: value.replace("{grpc_port}", str(port)) for key, value in env.items()}
        service = ServiceProcess(name, module, env, port, tmp_path / f"{name}.log")
        started.append(service)  # before start(): a failed start is cleaned up too
        service.start()
        return service

    yield factory
    for service in started:
        service.terminate()
    if _failed(request.node):
        for service in started:
            print(f"\n----- {service.name} ({service.log_path}) last lines -----\n{service.log_tail()}")
