"""What every service's process runs on: its event loop, the real clock and id source (tests pass
their own clock and ids)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's main coroutine on uvloop (asyncio's loop written in C) where it is
    installed, else on asyncio's own. Every call crosses the loop many times — gRPC, asyncpg,
    NATS — and uvloop takes about a tenth off intake's CPU per SubmitTicket (benchmarks/)."""
    try:
        import uvloop
    except ImportError:  # a platform uvloop does not support (Windows)
        return asyncio.run(main)
    return uvloop.run(main)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UuidIds:
    def new_id(self) -> str:
        return str(uuid.uuid4())
