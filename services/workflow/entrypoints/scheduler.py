"""Wakes instances whose timers or SLA checks are due (the engine's timers are passive).

Any number of replicas run this loop: each instance is claimed with FOR UPDATE SKIP LOCKED in its
own transaction. Lateness (how long after its due time an instance was woken) is logged per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.workflow.application import handlers

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, deps: handlers.WorkflowDeps, *, poll_seconds: float, batch: int) -> None:
        self._deps, self._poll, self._batch = deps, poll_seconds, batch
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self.woken = 0

    def wake(self) -> None:
        """Something changed (a commit set an earlier due time): look now rather than at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                woken = await handlers.wake_due(self._deps, self._batch)
                self.woken += woken
                if woken == self._batch:
                    continue  # more may be due: go on at once
            except Exception as exc:
                log.warning("scheduler: %s; retrying", exc)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
