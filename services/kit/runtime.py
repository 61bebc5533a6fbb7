"""What every service's process runs on: its event loop, the real clock and id source (tests pass
their own clock and ids)."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


#: Allocations between young-generation collections (CPython's default is 700), and how many
#: collections of each generation before the next older one is collected.
GC_THRESHOLDS = (20_000, 50, 100)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's main coroutine on uvloop (asyncio's loop written in C) where it is
    installed, else on asyncio's own. Every call crosses the loop many times — gRPC, asyncpg,
    NATS — and uvloop takes about a tenth off intake's CPU per SubmitTicket (benchmarks/).

    The cyclic garbage collector is tuned for a server first: what exists by now (modules, the
    protobuf and SQLAlchemy descriptions; tens of thousands of objects that live as long as the
    process) is frozen out of its scans, and it runs far less often. A request allocates hundreds
    of short-lived objects, so at CPython's defaults the collector ran every few requests, each
    time also walking everything that survived earlier ones: about 4 % more intake throughput.
    Reference cycles are still collected, a little later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
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
