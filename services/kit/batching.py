"""Group commit: many concurrent requests share one database transaction.

Each caller hands its item to :meth:`GroupCommitter.submit` and awaits its own result. One
worker task takes whatever has queued up — one item when the service is idle, dozens under load —
and processes them together, so the per-transaction costs (round trips, COMMIT, a lock held until
COMMIT such as intake's per-day ticket counter) are paid once per batch instead of once per request.

If a batch fails as a whole (a constraint hit by one item, a lost connection), every item of it is
retried alone, so one bad item fails only its own caller; an item that fails alone with an error
`retryable` accepts (say the database dropped the connection) is tried once more. Processors must
therefore be idempotent (intake's are, by request id). Results are per item: the processor
returns, for each item in order, either a value or the exception that caller should get.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Processes items in one transaction; returns one result (or exception) per item, in order.
Processor = Callable[[Sequence[Item]], Awaitable[Sequence[Result | BaseException]]]


class GroupCommitter(Generic[Item, Result]):
    """`workers` is how many batches may be in flight at once. One suits batches that take the
    same lock (intake's ticket counter): more workers only make smaller batches that queue for
    that lock, which measured slower at every load (benchmarks/intake_submit.py).

    `linger` (seconds) is how long a batch waits for more items when it would start with several
    already waiting — a busy service — as PostgreSQL's `commit_delay` does. A transaction costs
    the same whatever its size, so under load fewer, larger ones leave more of the machine to the
    requests themselves; a lone item (an idle service) is committed at once."""

    def __init__(
        self,
        processor: Processor[Item, Result],
        *,
        max_batch: int = 256,
        workers: int = 1,
        retryable: Callable[[BaseException], bool] = lambda exc: False,
        on_batch: Callable[[int], None] = lambda size: None,
        linger: float = 0.0,
    ) -> None:
        self._process = processor
        self._linger = linger
        self._retryable = retryable
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._max_workers = workers
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self.batches = 0  # for tests and metrics: how many transactions served the items so far

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._workers) < self._max_workers:
            worker = asyncio.create_task(self._drain(), name="group-commit")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        # A caller that gives up (deadline, cancel) cancels only its own future, never the batch
        # others wait on: its item is still processed (the worker skips setting a done future),
        # and request ids make the outcome replayable.
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                if self._linger and 1 < len(self._queue) < self._max_batch:
                    await asyncio.sleep(self._linger)
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                await self._run(batch)
        except BaseException:
            # Cancelled (shutdown) or a bug: no caller may wait forever for a batch that won't run.
            for _, future in batch + self._queue:
                future.cancel()
            self._queue = []
            raise
        finally:
            # Leave the worker set in the same step that saw the queue empty. The done callback
            # alone comes too late: the callers just answered run first, and one submitting again
            # at once would count this finished worker and wait for it forever.
            self._workers.discard(asyncio.current_task())

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]], *, again: bool = False) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        self._on_batch(len(items))
        try:
            outcomes = await self._process(items)
        except Exception as exc:
            if len(batch) == 1:
                if not again and self._retryable(exc):
                    log.info("group commit failed (%r); trying once more", exc)
                    await self._run(batch, again=True)
                    return
                outcomes = [exc]
            else:
                log.info("group commit of %d items failed (%r); retrying each alone", len(batch), exc)
                for one in batch:
                    await self._run([one])
                return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
