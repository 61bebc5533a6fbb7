"""Group commit: concurrent callers share batches, and one bad item fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.kit.batching import GroupCommitter


class Ledger:
    """A processor that records its batches and refuses any batch holding a negative number."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.stored: list[int] = []

    async def process(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)  # a database round trip: later callers queue up meanwhile
        if any(i < 0 for i in items):
            raise ValueError(f"negative amount in {list(items)}")
        self.stored.extend(items)
        return [i * 10 for i in items]


async def test_concurrent_callers_share_transactions_and_each_gets_its_own_result() -> None:
    ledger = Ledger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.process)
    results = await asyncio.gather(*(committer.submit(i) for i in range(100)))
    assert results == [i * 10 for i in range(100)]
    assert sorted(ledger.stored) == list(range(100))
    assert len(ledger.batches) < 10, f"100 concurrent items took {len(ledger.batches)} transactions"


async def test_a_failing_item_fails_only_its_caller() -> None:
    ledger = Ledger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.process)
    outcomes = await asyncio.gather(*(committer.submit(i) for i in (1, 2, -3, 4, 5)), return_exceptions=True)
    assert outcomes[:2] == [10, 20]
    assert outcomes[3:] == [40, 50]
    assert isinstance(outcomes[2], ValueError)
    assert "-3" in str(outcomes[2])
    assert sorted(ledger.stored) == [1, 2, 4, 5]


async def test_per_item_errors_from_the_processor_reach_only_that_caller() -> None:
    async def process(items: Sequence[str]) -> list[str | BaseException]:
        return [KeyError(i) if i == "bad" else i.upper() for i in items]

    committer: GroupCommitter[str, str] = GroupCommitter(process)
    good, bad = await asyncio.gather(committer.submit("ok"), committer.submit("bad"), return_exceptions=True)
    assert good == "OK"
    assert isinstance(bad, KeyError)


async def test_a_caller_that_gives_up_does_not_cancel_the_batch() -> None:
    ledger = Ledger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.process)
    impatient = asyncio.create_task(committer.submit(7))
    patient = asyncio.create_task(committer.submit(8))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == 80
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert sorted(ledger.stored) == [7, 8], "the abandoned item is still stored (its request id makes it replayable)"


class Flaky(Ledger):
    """A processor whose connection drops `drops` times before it works again."""

    def __init__(self, drops: int) -> None:
        super().__init__()
        self.drops = drops

    async def process(self, items: Sequence[int]) -> list[int | BaseException]:
        if self.drops:
            self.drops -= 1
            self.batches.append(list(items))
            raise ConnectionResetError("the database dropped the connection")
        return await super().process(items)


async def test_a_lost_connection_is_retried_once_and_then_reported() -> None:
    def lost(exc: BaseException) -> bool:
        return isinstance(exc, ConnectionError)

    once = Flaky(drops=1)
    assert await GroupCommitter(once.process, retryable=lost).submit(7) == 70
    assert once.stored == [7]

    twice = Flaky(drops=2)
    with pytest.raises(ConnectionResetError):
        await GroupCommitter(twice.process, retryable=lost).submit(8)
    assert twice.batches == [[8], [8]], "one retry, not a loop"

    refused = Ledger()
    with pytest.raises(ValueError, match="negative"):  # not retryable: reported at once
        await GroupCommitter(refused.process, retryable=lost).submit(-1)
    assert refused.batches == [[-1]]


async def test_a_caller_submitting_again_as_soon_as_its_batch_finishes_is_served() -> None:
    """The moment a worker finishes its last batch, the callers it just answered run before the
    worker's task is reaped; one that submits again at once (intake retries a request id that a
    concurrent call committed first) must still find a worker instead of waiting forever."""
    ledger = Ledger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.process)

    async def twice(i: int) -> tuple[int, int]:
        first = await committer.submit(i)
        return first, await committer.submit(i + 1000)

    results = await asyncio.wait_for(asyncio.gather(*(twice(i) for i in range(20))), timeout=5)
    assert results == [(i * 10, (i + 1000) * 10) for i in range(20)]


async def test_under_load_a_batch_lingers_for_more_items_but_a_lone_item_does_not_wait() -> None:
    ledger = Ledger()
    committer: GroupCommitter[int, int] = GroupCommitter(ledger.process, linger=0.2)

    async def later(i: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return await committer.submit(i)

    # Two waiting at once (a busy service): the batch waits, and those arriving meanwhile join it.
    results = await asyncio.gather(committer.submit(1), committer.submit(2), later(3, 0.05), later(4, 0.1))
    assert results == [10, 20, 30, 40]
    assert ledger.batches == [[1, 2, 3, 4]]

    # A lone item (an idle service) is committed at once, not after the linger.
    await asyncio.wait_for(committer.submit(5), timeout=0.15)
    assert ledger.batches[-1] == [5]
