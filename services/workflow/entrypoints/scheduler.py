"""Wakes instances whose timers or SLA checks are due (the engine's timers are passive).

Any number of replicas run this loop: each instance is claimed with FOR UPDATE SKIP LOCKED in its
own transaction. Between rounds the loop sleeps until the earliest known wake-up time (at most
`poll_seconds`, so another replica's instances are seen too); a commit that sets an earlier one
on this replica cuts the sleep short (`due_at`). Lateness — how long after its due time an
instance was woken — is kept for recent wake-ups and logged when over a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from services.workflow.application import handlers

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        deps: handlers.WorkflowDeps,
        *,
        poll_seconds: float,
        batch: int,
        observe_lateness: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self._deps, self._poll, self._batch = deps, poll_seconds, batch
        self._observe = observe_lateness
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._next: datetime | None = None
        self.woken = 0
        self._lateness: deque[float] = deque(maxlen=100_000)

    def due_at(self, at: datetime) -> None:
        """An instance now needs waking at `at`: look then, if that is before the next planned look."""
        if self._next is None or at < self._next:
            self._next = at
            self._wakeup.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    @property
    def lateness(self) -> list[float]:
        """Seconds each recent wake-up came after its due time (oldest first)."""
        return list(self._lateness)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                lateness = await handlers.wake_due(self._deps, self._batch)
                self.woken += len(lateness)
                self._lateness.extend(lateness)
                for seconds in lateness:
                    self._observe(seconds)
                if lateness and max(lateness) > 1.0:
                    log.warning("scheduler: woke %d instances up to %.1fs late", len(lateness), max(lateness))
                if len(lateness) == self._batch:
                    continue  # more may be due: go on at once
                self._next = await handlers.next_wake_up(self._deps)
            except Exception as exc:
                log.warning("scheduler: %s; retrying", exc)
                self._next = None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._sleep_seconds())

    def _sleep_seconds(self) -> float:
        if self._next is None:
            return self._poll
        return max(0.0, min(self._poll, (self._next - self._deps.clock.now()).total_seconds()))
