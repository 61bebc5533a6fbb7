"""Storing submitted tickets, many per transaction.

`submit_ticket` (handlers.py) validates a submission alone and hands the ready ticket here. Under
load many are waiting at once; `commit_submissions` stores them together (group commit, see
`services.kit.batching`): one look-up of their request ids, one counter update per organisation
and day for all their numbers, one insert per table, one COMMIT. The counter row stays locked
until that COMMIT, so numbers are gapless; batching is what keeps that lock from becoming the
bottleneck (one lock per batch instead of one per ticket).

Request ids are checked optimistically: almost every submission is new, so the batch is stored
without looking its ids up first, and the request log's unique key catches a retry. Then the
whole transaction rolls back (the counter with it: no gap) and the batch is stored again, this
time looking the ids up; a retried id is answered after that COMMIT, from what its first call
stored. So the transaction holding the counter does only the writes, and no plan of the look-up
(which a young table's statistics can make a scan) is on the common path. On PostgreSQL the
writes go through `adapters/pg_submissions.py`, the fast path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from services.intake.application.ports import (
    DuplicateRequest,
    RecordedRequest,
    SubmissionUnitOfWork,
    SubmissionUnitOfWorkFactory,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.intake.domain import events as ev
from services.intake.domain.catalog import Organisation
from services.intake.domain.errors import InvalidTicket
from services.intake.domain.model import Actor, Ticket
from services.kit.errors import FieldViolation

OPERATION = "SubmitTicket"
RELATED_TICKETS = 10


@dataclass(frozen=True, slots=True)
class PendingSubmission:
    """A validated ticket without its number yet."""

    org: Organisation
    day: date  # the business day in the organisation's time zone: the number's date part
    request_id: str
    fingerprint: str
    actor: Actor
    draft: Ticket
    contents: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Submitted:
    ticket: Ticket
    replayed: bool


class SubmissionQueue(Protocol):
    async def submit(self, item: PendingSubmission) -> Submitted: ...


def request_id_reused(seen_operation: str) -> InvalidTicket:
    return InvalidTicket([FieldViolation("request_id", f"was already used for a different {seen_operation} request")])


async def commit_submissions(
    batch_uow: SubmissionUnitOfWorkFactory, uow_factory: UnitOfWorkFactory, batch: Sequence[PendingSubmission]
) -> list[Submitted | BaseException]:
    try:
        return await _commit(batch_uow, uow_factory, batch, look_up=False)
    except DuplicateRequest:  # a request id seen before (a client's retry): look them up this time
        return await _commit(batch_uow, uow_factory, batch, look_up=True)


async def _commit(
    batch_uow: SubmissionUnitOfWorkFactory,
    uow_factory: UnitOfWorkFactory,
    batch: Sequence[PendingSubmission],
    *,
    look_up: bool,
) -> list[Submitted | BaseException]:
    results: dict[int, Submitted | BaseException] = {}
    replays: list[tuple[int, RecordedRequest]] = []
    async with batch_uow() as uow:
        by_org: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(batch):
            by_org[p.org.id].append(i)
        # Organisations in a fixed order: two batches never wait for each other's counter rows in a cycle.
        for org_id in sorted(by_org):
            await _store_for_org(uow, batch, by_org[org_id], results, replays, look_up=look_up)
        await uow.commit()
    if replays:  # request ids seen before: their tickets were committed by an earlier call
        async with uow_factory() as reader:
            for i, recorded in replays:
                results[i] = await _replay(reader, recorded, batch[i])
    return [results[i] for i in range(len(batch))]


async def _store_for_org(
    uow: SubmissionUnitOfWork,
    batch: Sequence[PendingSubmission],
    indices: list[int],
    results: dict[int, Submitted | BaseException],
    replays: list[tuple[int, RecordedRequest]],
    *,
    look_up: bool,
) -> None:
    org = batch[indices[0]].org
    seen = await uow.requests.find_many(org.id, [batch[i].request_id for i in indices]) if look_up else {}
    fresh: list[int] = []
    first_with_id: dict[str, int] = {}
    later_with_id: list[tuple[int, int]] = []  # (index, index of the first one with its request id)
    for i in indices:
        p = batch[i]
        if (recorded := seen.get(p.request_id)) is not None:
            replays.append((i, recorded))
        elif (first := first_with_id.get(p.request_id)) is not None:
            later_with_id.append((i, first))
        else:
            first_with_id[p.request_id] = i
            fresh.append(i)
    related = await uow.tickets.recent_numbers_of(org.id, {batch[i].draft.requester.id for i in fresh}, RELATED_TICKETS)
    numbers = await _allocate(uow, org, [batch[i] for i in fresh])
    stored: list[tuple[Ticket, Sequence[bytes]]] = []
    for i, number in zip(fresh, numbers, strict=True):
        p = batch[i]
        earlier = related.setdefault(p.draft.requester.id, [])
        ticket = p.draft.numbered(number, tuple(earlier[:RELATED_TICKETS]))
        earlier.insert(0, number)  # a second ticket of the same requester in this batch links this one
        stored.append((ticket, p.contents))
        results[i] = Submitted(ticket, replayed=False)
        uow.emit(p.actor, [ev.TicketSubmitted(ticket)])
    await uow.tickets.add_many(stored)
    await uow.requests.record_many(
        org.id,
        [(batch[i].request_id, RecordedRequest(OPERATION, batch[i].fingerprint, t.ticket_number, t.ticket_number))
         for i, (t, _) in zip(fresh, stored, strict=True)],
    )  # fmt: skip
    for i, first in later_with_id:
        original = results[first]
        same = batch[i].fingerprint == batch[first].fingerprint
        results[i] = (
            Submitted(original.ticket, replayed=True)
            if isinstance(original, Submitted) and same
            else request_id_reused(OPERATION)
        )


async def _replay(uow: UnitOfWork, recorded: RecordedRequest, p: PendingSubmission) -> Submitted | BaseException:
    if recorded.operation != OPERATION or recorded.fingerprint != p.fingerprint:
        return request_id_reused(recorded.operation)
    ticket = await uow.tickets.get(recorded.ticket_number)
    assert ticket is not None, "a recorded request always points at a ticket"
    return Submitted(ticket, replayed=True)


async def _allocate(uow: SubmissionUnitOfWork, org: Organisation, pending: list[PendingSubmission]) -> list[str]:
    """Numbers in submission order; one counter update per business day (normally just one)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for i, p in enumerate(pending):
        by_day[p.day].append(i)
    numbers = [""] * len(pending)
    for day in sorted(by_day):
        positions = by_day[day]
        for position, number in zip(
            positions, await uow.tickets.allocate_numbers(org.id, org.ticket_prefix, day, len(positions)), strict=True
        ):
            numbers[position] = number
    return numbers
