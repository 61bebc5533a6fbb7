"""Child processes for tests: free ports, a reaper, and services run as real OS processes.

Every process the test support starts goes through :func:`spawn`, which puts it in its own
process group (so a SIGKILL takes its children too) and records it; an ``atexit`` hook kills
whatever is still alive, so nothing outlives the test session even when a fixture's teardown
never ran (a crash, Ctrl-C). Only a hard kill of pytest itself (SIGKILL) can leak a process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc  # type: ignore[import-untyped, unused-ignore]  # grpcio ships no type stubs
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: The repository root: services are started from here so ``python -m tests.…`` resolves.
REPO_ROOT = Path(__file__).resolve().parents[2]

_live: set[subprocess.Popen[bytes]] = set()


#: Ports :func:`free_ports` handed out in this process: never twice, even before their server binds.
_handed_out: set[int] = set()
#: Where :func:`free_ports` looks: above the well-known and common service ports.
_LOWEST = 10_000


def _ephemeral_low() -> int:
    """The lowest port of the range the kernel takes client connections' local ports from."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's and IANA's default start of the range


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that are free now, below the
    kernel's ephemeral range.

    Below that range no client connection can take one of them while the server that will bind
    it is still starting: the kernel picks a connection's local port from the range. A port the
    OS picks for ``bind(("127.0.0.1", 0))`` lies inside it, and a connection made meanwhile by
    anything on the machine may get it (a launcher test failed that way: notify's port, free
    when probed, was a client's by the time intake and workflow had started before it).
    Only another process choosing the same port between probe and bind remains a race.
    """
    high = _ephemeral_low() - count
    for _ in range(1000):
        if high <= _LOWEST:
            break
        first = random.randrange(_LOWEST, high)
        ports = range(first, first + count)
        if _handed_out.isdisjoint(ports) and all(_bindable(p) for p in ports):
            _handed_out.update(ports)
            return first
    if count == 1:  # a machine whose ephemeral range starts low: let the OS pick
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError(f"no {count} consecutive free ports between {_LOWEST} and {high + count}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (see :func:`free_ports`)."""
    return free_ports(1)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, n: int = 50) -> str:
    """The last ``n`` lines of a (log) file, or a note that it does not exist."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"<no log file at {path}>"
    return "\n".join(lines[-n:])


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout+stderr appended to ``log_path``; track it.

    ``user`` (only meaningful when running as root) drops privileges in the child, e.g. for
    PostgreSQL, which refuses to run as root.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # own process group: killpg() reaches grandchildren too
            user=user,
            extra_groups=[] if user is not None else None,
        )
    _live.add(proc)
    return proc


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the whole process group of ``proc`` (a no-op if it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Send ``sig`` to ``proc``, wait up to ``timeout`` s, SIGKILL the group if it lingers.

    Returns the exit code (negative signal number if killed by a signal). Stragglers left in
    the process group after the leader exited are SIGKILLed too.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
    kill_group(proc)
    _live.discard(proc)
    assert proc.returncode is not None
    return proc.returncode


def kill_process(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL ``proc`` and its process group at once (a crash), wait and return the exit code."""
    return stop_process(proc, signal.SIGKILL, timeout=10.0)


@atexit.register
def _reap_all() -> None:
    for proc in list(_live):
        if proc.poll() is None:  # only while unreaped is the pid (and its group id) surely still ours
            kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        _live.discard(proc)


def grpc_health_status(address: str, service: str = "", timeout: float = 1.0) -> int | None:
    """One ``grpc.health.v1.Health/Check`` call; the status enum value or None if it failed."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return None
        status: int = response.status
        return status


class ServiceStartError(RuntimeError):
    """A service process exited or never reported SERVING; the message has its log tail."""


class ServiceProcess:
    """A service run as ``python -m <module>`` in its own OS process, checked via gRPC health.

    ``env`` is merged over ``os.environ`` (plus ``PYTHONUNBUFFERED=1`` so logs are timely);
    stdout and stderr are appended to ``log_path`` across restarts.
    """

    def __init__(self, name: str, module: str, env: dict[str, str], grpc_port: int, log_path: Path) -> None:
        self.name = name
        self.module = module
        self.env = env
        self.grpc_port = grpc_port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"ServiceProcess({self.name!r}, {self.module!r}, pid={self.pid}, address={self.address!r})"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); else the exit code, ``-signal`` if killed."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, n: int = 50) -> str:
        return tail(self.log_path, n)

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and block until its health check says SERVING.

        Raises :class:`ServiceStartError` (with the log tail) if the process exits first or is
        not SERVING within ``timeout`` seconds; in the latter case it is killed.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._proc = spawn([sys.executable, "-m", self.module], log_path=self.log_path, env=env, cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self._proc.poll()) is not None:
                self._fail(f"exited with code {code} before it was SERVING")
            if grpc_health_status(self.address, timeout=1.0) == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.1)
        self.kill()
        self._fail(f"was not SERVING on {self.address} within {timeout:.0f}s (killed)")

    def _fail(self, what: str) -> None:
        raise ServiceStartError(
            f"service {self.name!r} ({self.module}) {what}; log {self.log_path}:\n{self.log_tail()}"
        )

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns the exit code (None if never started)."""
        return stop_process(self._proc, signal.SIGTERM, timeout) if self._proc is not None else None

    def kill(self) -> int | None:
        """SIGKILL the process (and its group) as a crash would, and wait for it."""
        return kill_process(self._proc) if self._proc is not None else None

    def restart(self, timeout: float = 30.0) -> None:
        """Terminate if still running, then start again on the same port and log file."""
        self.terminate()
        self.start(timeout)
