"""Is a Docker engine there to run testcontainers? Answered fast, and never by raising."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

_DEFAULT_SOCKET = "/var/run/docker.sock"


def docker_available(timeout: float = 1.0) -> bool:
    """True only if a Docker engine answers a ping within ``timeout`` seconds.

    Without ``DOCKER_HOST`` and without the default socket file this returns at once, so a
    machine that has the docker CLI but no engine falls through in microseconds. Set
    ``SUPPORTFLOW_TEST_NO_DOCKER=1`` to skip containers even when an engine is present.
    """
    if os.environ.get("SUPPORTFLOW_TEST_NO_DOCKER", "") not in ("", "0"):
        return False
    host = os.environ.get("DOCKER_HOST", "")
    is_local_socket = not host or host.startswith("unix://")
    if is_local_socket and not Path(host.removeprefix("unix://") or _DEFAULT_SOCKET).exists():
        return False
    try:
        # docker-py has no type stubs; importing it dynamically keeps this module strictly typed.
        docker = importlib.import_module("docker")
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure (no engine, bad TLS config, timeout) means "no Docker"
        return False
