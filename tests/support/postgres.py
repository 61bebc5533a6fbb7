"""A real PostgreSQL for tests: testcontainers, the machine's server, or a throwaway cluster.

Admin statements (CREATE/DROP DATABASE, readiness pings) go through SQLAlchemy's asyncpg
dialect, run with ``asyncio.run`` on a short-lived worker thread so they work the same from
plain code, sync fixtures and from inside a running event loop (an async test).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.containers import docker_available
from tests.support.processes import free_port, kill_process, port_open, spawn, stop_process, tail

#: Set to a ``postgresql://user[:password]@host:port/admin_db`` URL to use that server instead.
DATABASE_URL_ENV = "SUPPORTFLOW_TEST_DATABASE_URL"
#: Image for the testcontainers path.
POSTGRES_IMAGE = os.environ.get("SUPPORTFLOW_TEST_POSTGRES_IMAGE", "postgres:16-alpine")

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_T = TypeVar("_T")


def _run_sync(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a fresh loop in a worker thread and return its result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def unique_database_name(prefix: str = "sf_test_") -> str:
    """``sf_test_<12 hex chars>``: unique per call, a valid unquoted identifier."""
    return f"{prefix}{secrets.token_hex(6)}"


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL server listens, and how to run admin statements on it.

    ``admin_dsn`` is a libpq-style URL (``postgresql://user@host:port/postgres``) of a database
    the user may ``CREATE DATABASE`` from; its password, if any, is reused for every URL.
    """

    host: str
    port: int
    user: str
    admin_dsn: str

    @classmethod
    def at(cls, host: str, port: int, user: str = "postgres", password: str | None = None) -> PostgresServer:
        dsn = URL.create("postgresql", username=user, password=password, host=host, port=port, database="postgres")
        return cls(host, port, user, dsn.render_as_string(hide_password=False))

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        """From any PostgreSQL URL (a ``+driver`` suffix is dropped; its database is the admin one)."""
        parsed = make_url(url).set(drivername="postgresql")
        parsed = parsed.set(database=parsed.database or "postgres")
        return cls(
            parsed.host or "127.0.0.1",
            parsed.port or 5432,
            parsed.username or "postgres",
            parsed.render_as_string(hide_password=False),
        )

    def url(self, database: str) -> str:
        """SQLAlchemy async URL of ``database`` on this server: ``postgresql+asyncpg://…/database``."""
        parsed = make_url(self.admin_dsn).set(drivername="postgresql+asyncpg", database=database)
        return parsed.render_as_string(hide_password=False)

    def execute(self, sql: str, database: str | None = None, timeout: float = 10.0) -> None:
        """Run one statement in autocommit mode (default: in the admin database)."""
        url = self.url(database or make_url(self.admin_dsn).database or "postgres")

        async def run() -> None:
            engine = create_async_engine(
                url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args={"timeout": timeout}
            )
            try:
                async with engine.connect() as conn:
                    await conn.execute(text(sql))
            finally:
                await engine.dispose()

        _run_sync(run)

    def ping(self, timeout: float = 2.0) -> bool:
        """True if the server accepts a connection and answers ``SELECT 1``."""
        try:
            self.execute("SELECT 1", timeout=timeout)
        except Exception:
            return False
        return True

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy async URL."""
        self.execute(f'CREATE DATABASE "{_checked(name)}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database if it exists, terminating any connections still open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')


def _checked(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


# ---------------------------------------------------------------------------------------------
# Throwaway cluster from the installed binaries
# ---------------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (PATH first, then the newest Debian install)."""
    candidates: list[Path] = []
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)  # resolve: /usr/local/bin symlinks
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    raise FileNotFoundError("no PostgreSQL binaries (initdb, postgres) on PATH or under /usr/lib/postgresql")


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root; when we are root, run it as ``postgres`` (or ``nobody``)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class ThrowawayCluster:
    """A private PostgreSQL cluster (trust auth, superuser ``postgres``) on 127.0.0.1:``port``.

    ``stop``/``kill``/``start`` keep the port and the data directory, so data survives a crash
    and restart. ``destroy`` stops it and deletes the data directory.
    """

    data_dir: Path
    log_path: Path
    port: int
    bin_dir: Path
    run_as: str | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def server(self) -> PostgresServer:
        return PostgresServer.at("127.0.0.1", self.port)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and wait until it answers queries (crash recovery included)."""
        if self.running:
            raise RuntimeError(f"PostgreSQL on port {self.port} is already running")
        argv = [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",  # TCP only: no socket-path length or permission trouble
            "-c", "fsync=off",  # safe against process kills (the OS keeps the writes), only not power loss
        ]  # fmt: skip
        self._proc = spawn(argv, log_path=self.log_path, cwd=self.data_dir.parent, user=self.run_as)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self._proc.poll()) is not None:
                raise RuntimeError(f"postgres exited with code {code}; log {self.log_path}:\n{tail(self.log_path)}")
            if port_open(self.port) and self.server.ping(timeout=2.0):
                return
            time.sleep(0.1)
        kill_process(self._proc)
        raise TimeoutError(f"postgres not ready within {timeout:.0f}s; log {self.log_path}:\n{tail(self.log_path)}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT, timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends at once, as a crash would."""
        if self._proc is not None:
            kill_process(self._proc)

    def destroy(self) -> None:
        """Stop the cluster and delete its data directory."""
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_throwaway_cluster(tmpdir: Path, port: int | None = None) -> ThrowawayCluster:
    """``initdb`` a fresh cluster and start it on a free port; the log goes to ``tmpdir``.

    The data directory lives under ``tmpdir``, except when running as root: then it goes to a
    fresh directory in the system temp dir owned by the unprivileged user (pytest's own temp
    dirs are private to root and the server could not reach them). Call ``destroy`` when done.
    """
    tmpdir.mkdir(parents=True, exist_ok=True)
    run_as = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="sf-pg-", dir=None if run_as else tmpdir))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    port = port or free_port()
    cluster = ThrowawayCluster(
        data_dir=base / "data",
        log_path=tmpdir / f"postgres-{port}.log",
        port=port,
        bin_dir=postgres_bin_dir(),
        run_as=run_as,
    )
    initdb = [
        str(cluster.bin_dir / "initdb"),
        "-D", str(cluster.data_dir),
        "--username=postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
    ]  # fmt: skip
    with cluster.log_path.open("ab") as log:
        result = subprocess.run(initdb, stdout=log, stderr=subprocess.STDOUT, cwd=base, user=run_as, check=False)
    if result.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({result.returncode}); log {cluster.log_path}:\n{tail(cluster.log_path)}")
    try:
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


# ---------------------------------------------------------------------------------------------
# The policy: env override → testcontainers → the machine's server → throwaway cluster
# ---------------------------------------------------------------------------------------------

_started = contextlib.ExitStack()  # whatever find_postgres started; closed at session end / exit


def find_postgres(tmpdir: Path | None = None) -> PostgresServer:
    """A PostgreSQL server for this test session.

    1. ``$SUPPORTFLOW_TEST_DATABASE_URL`` if set (a server URL; its database is the admin one);
    2. a testcontainers PostgreSQL if a Docker engine answers;
    3. the machine's server at 127.0.0.1:5432 (trust auth, user ``postgres``) if it answers;
    4. a throwaway cluster (logs in ``tmpdir``, or a temp dir).

    What it starts is stopped by :func:`stop_started_postgres` (the session fixture calls it)
    or at interpreter exit at the latest.
    """
    if url := os.environ.get(DATABASE_URL_ENV):
        return PostgresServer.from_url(url)
    if docker_available():
        try:
            return _start_container()
        except Exception as exc:  # e.g. image pull failed offline: fall through to local servers
            warnings.warn(f"testcontainers PostgreSQL failed, falling back: {exc!r}", stacklevel=2)
    machine = PostgresServer.at("127.0.0.1", 5432)
    if port_open(machine.port) and machine.ping():
        return machine
    if tmpdir is None:
        tmpdir = Path(tempfile.mkdtemp(prefix="sf-pg-logs-"))
        _started.callback(shutil.rmtree, tmpdir, ignore_errors=True)
    cluster = start_throwaway_cluster(tmpdir)
    _started.callback(cluster.destroy)
    return cluster.server


def stop_started_postgres() -> None:
    """Stop every container/cluster :func:`find_postgres` started (idempotent)."""
    _started.close()


atexit.register(stop_started_postgres)  # runs before the process reaper: a clean shutdown first


def _start_container() -> PostgresServer:
    from testcontainers.community.postgres import PostgresContainer  # slow import: only when used

    container = PostgresContainer(POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres")
    container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
    container.start()
    _started.callback(container.stop)
    host = container.get_container_host_ip()
    return PostgresServer.at(host, container.get_exposed_port(5432), password="postgres")
