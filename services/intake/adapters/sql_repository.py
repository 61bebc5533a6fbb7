"""SQL implementations of the intake ports (PostgreSQL and SQLite)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from typing import Any, Protocol

from sqlalchemy import Row, and_, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.adapters import tables as t
from services.intake.application.ports import DuplicateRequest, PageCursor, RecordedRequest, TicketFilter
from services.intake.domain.model import (
    Actor,
    AttachmentInfo,
    Comment,
    Priority,
    Rating,
    Ticket,
    TicketStatus,
    TimelineEntry,
)
from services.intake.domain.numbering import ticket_numbers
from services.intake.domain.submission import Contact, Environment, Requester
from services.kit.db import is_postgres, stored_utc, stored_utc_required


def ticket_row(ticket: Ticket) -> dict[str, Any]:
    r, c, e = ticket.requester, ticket.contact, ticket.environment
    return {
        "ticket_number": ticket.ticket_number,
        "organization": ticket.organization,
        "status": ticket.status.value,
        "title": ticket.title,
        "requester_id": r.id,
        "requester": {"id": r.id, "name": r.name, "department": r.department, "company": r.company, "vip": r.vip},
        "contact": {"phone": c.phone, "email": c.email, "im": c.im},
        "channel": ticket.channel,
        "problem_type": ticket.problem_type,
        "impact_scope": ticket.impact_scope,
        "urgency": ticket.urgency,
        "description": ticket.description,
        "environment": {"device": e.device, "os": e.os, "software": e.software, "software_version": e.software_version},
        "reproduction_steps": list(ticket.reproduction_steps),
        "labels": list(ticket.labels),
        "missing_info": list(ticket.missing_info),
        "related_ticket_numbers": list(ticket.related_ticket_numbers),
        "occurred_at": ticket.occurred_at,
        "expected_resolution_at": ticket.expected_resolution_at,
        "submitted_at": ticket.submitted_at,
        "updated_at": ticket.updated_at,
        "submitted_by": ticket.submitted_by,
        "priority": ticket.priority.value if ticket.priority else None,
        "category": ticket.category,
        "team": ticket.team,
        "assignee": ticket.assignee,
        "co_handlers": list(ticket.co_handlers),
        "rating": ticket.rating.value if ticket.rating else None,
        "rating_comment": ticket.rating_comment,
    }


def ticket_from_row(row: Row[Any], **extra: Any) -> Ticket:
    m = row._mapping
    return Ticket(
        ticket_number=m["ticket_number"],
        organization=m["organization"],
        status=TicketStatus(m["status"]),
        title=m["title"],
        requester=Requester(**m["requester"]),
        contact=Contact(**m["contact"]),
        channel=m["channel"],
        problem_type=m["problem_type"],
        impact_scope=m["impact_scope"],
        urgency=m["urgency"],
        description=m["description"],
        environment=Environment(**m["environment"]),
        reproduction_steps=tuple(m["reproduction_steps"]),
        labels=tuple(m["labels"]),
        missing_info=tuple(m["missing_info"]),
        related_ticket_numbers=tuple(m["related_ticket_numbers"]),
        occurred_at=stored_utc(m["occurred_at"]),
        expected_resolution_at=stored_utc(m["expected_resolution_at"]),
        submitted_at=stored_utc_required(m["submitted_at"]),
        updated_at=stored_utc_required(m["updated_at"]),
        submitted_by=m["submitted_by"],
        priority=Priority(m["priority"]) if m["priority"] else None,
        category=m["category"],
        team=m["team"],
        assignee=m["assignee"],
        co_handlers=tuple(m["co_handlers"]),
        rating=Rating(m["rating"]) if m["rating"] else None,
        rating_comment=m["rating_comment"],
        **extra,
    )


_ATTACHMENT_META = [c for c in t.attachments.c if c.name != "content"]


def _attachment(row: Row[Any]) -> AttachmentInfo:
    m = row._mapping
    return AttachmentInfo(
        attachment_id=m["attachment_id"],
        file_name=m["file_name"],
        content_type=m["content_type"],
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        kind=m["kind"],
        uploaded_at=stored_utc_required(m["uploaded_at"]),
    )


def attachment_row(
    ticket_number: str, comment_id: str | None, position: int, info: AttachmentInfo, content: bytes
) -> dict[str, Any]:
    return {
        "attachment_id": info.attachment_id,
        "ticket_number": ticket_number,
        "comment_id": comment_id,
        "file_name": info.file_name,
        "content_type": info.content_type,
        "size_bytes": info.size_bytes,
        "sha256": info.sha256,
        "kind": info.kind,
        "uploaded_at": info.uploaded_at,
        "position": position,
        "content": content,
    }


def new_attachment_rows(tickets: Sequence[tuple[Ticket, Sequence[bytes]]]) -> list[dict[str, Any]]:
    """The attachment rows of newly submitted tickets (with their contents, in attachment order)."""
    return [
        attachment_row(ticket.ticket_number, None, position, info, content)
        for ticket, contents in tickets
        for position, (info, content) in enumerate(zip(ticket.attachments, contents, strict=True))
    ]


def newest_first(rows: Iterable[tuple[str, str, Any]]) -> dict[str, list[str]]:
    """(requester, number, submitted_at) rows as each requester's numbers, newest first (equal
    times by number, so the order does not depend on the database's)."""
    found: dict[str, list[tuple[Any, str]]] = {}
    for requester_id, number, submitted_at in rows:
        found.setdefault(requester_id, []).append((stored_utc(submitted_at), number))
    return {r: [n for _, n in sorted(found[r], reverse=True)] for r in found}


def _bump_counter(insert: Any, org: str, day: date, count: int) -> Any:
    """Add `count` to the organisation's counter of that day; returns the new last serial."""
    return (
        insert(t.ticket_counters)
        .values(organization=org, day=day.strftime("%Y%m%d"), last_serial=count)
        .on_conflict_do_update(
            index_elements=[t.ticket_counters.c.organization, t.ticket_counters.c.day],
            set_={"last_serial": t.ticket_counters.c.last_serial + count},
        )
        .returning(t.ticket_counters.c.last_serial)
    )


class SqlTicketRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def allocate_numbers(self, org: str, prefix: str, day: date, count: int) -> list[str]:
        if count == 0:
            return []
        insert = postgresql.insert if is_postgres(self._conn) else sqlite.insert
        last = (await self._conn.execute(_bump_counter(insert, org, day, count))).scalar_one()
        return ticket_numbers(prefix, day, last, count)

    async def add_many(self, tickets: Sequence[tuple[Ticket, Sequence[bytes]]]) -> None:
        if not tickets:
            return
        await self._conn.execute(t.tickets.insert(), [ticket_row(ticket) for ticket, _ in tickets])
        if rows := new_attachment_rows(tickets):
            await self._conn.execute(t.attachments.insert(), rows)

    async def add_attachments(
        self, ticket_number: str, comment_id: str | None, infos: Sequence[AttachmentInfo], contents: Sequence[bytes]
    ) -> None:
        if not infos:
            return
        position = 0
        if comment_id is None:
            existing = await self._conn.scalar(
                select(t.attachments.c.position)
                .where(t.attachments.c.ticket_number == ticket_number)
                .order_by(t.attachments.c.position.desc())
                .limit(1)
            )
            position = (existing + 1) if existing is not None else 0
        rows = [
            attachment_row(ticket_number, comment_id, position + i, info, content)
            for i, (info, content) in enumerate(zip(infos, contents, strict=True))
        ]
        await self._conn.execute(t.attachments.insert(), rows)

    async def get(self, ticket_number: str, *, for_update: bool = False) -> Ticket | None:
        query = select(t.tickets).where(t.tickets.c.ticket_number == ticket_number)
        if for_update and is_postgres(self._conn):
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        attachments = (
            await self._conn.execute(
                select(*_ATTACHMENT_META)
                .where(t.attachments.c.ticket_number == ticket_number, t.attachments.c.comment_id.is_(None))
                .order_by(t.attachments.c.position)
            )
        ).all()
        timeline = (
            await self._conn.execute(
                select(t.timeline)
                .where(t.timeline.c.ticket_number == ticket_number)
                .order_by(t.timeline.c.at, t.timeline.c.id)
            )
        ).all()
        comments = await self._comments(ticket_number)
        return ticket_from_row(
            row,
            attachments=tuple(_attachment(a) for a in attachments),
            timeline=tuple(
                TimelineEntry(stored_utc_required(e.at), e.event_type, Actor(e.actor_subject, e.actor_role), e.summary)
                for e in timeline
            ),
            comments=comments,
        )

    async def _comments(self, ticket_number: str, comment_id: str | None = None) -> tuple[Comment, ...]:
        where = (
            [t.comments.c.ticket_number == ticket_number]
            if comment_id is None
            else [t.comments.c.comment_id == comment_id]
        )
        rows = (await self._conn.execute(select(t.comments).where(*where).order_by(t.comments.c.created_at))).all()
        if not rows:
            return ()
        files = (
            await self._conn.execute(
                select(*_ATTACHMENT_META).where(t.attachments.c.comment_id.in_([r.comment_id for r in rows]))
            )
        ).all()
        by_comment: dict[str, list[AttachmentInfo]] = {}
        for f in files:
            by_comment.setdefault(f.comment_id, []).append(_attachment(f))
        return tuple(
            Comment(
                comment_id=r.comment_id,
                ticket_number=r.ticket_number,
                author=Actor(r.author_subject, r.author_role),
                body=r.body,
                created_at=stored_utc_required(r.created_at),
                attachments=tuple(by_comment.get(r.comment_id, ())),
            )
            for r in rows
        )

    async def save(self, ticket: Ticket) -> None:
        row = ticket_row(ticket)
        for key in ("ticket_number", "organization", "submitted_at", "submitted_by"):
            row.pop(key)
        await self._conn.execute(
            t.tickets.update().where(t.tickets.c.ticket_number == ticket.ticket_number).values(**row)
        )

    async def add_comment(self, comment: Comment, contents: Sequence[bytes]) -> None:
        await self._conn.execute(
            t.comments.insert().values(
                comment_id=comment.comment_id,
                ticket_number=comment.ticket_number,
                author_subject=comment.author.subject,
                author_role=comment.author.role,
                body=comment.body,
                created_at=comment.created_at,
            )
        )
        await self.add_attachments(comment.ticket_number, comment.comment_id, comment.attachments, contents)

    async def get_comment(self, comment_id: str) -> Comment | None:
        found = await self._comments("", comment_id)
        return found[0] if found else None

    async def attachment(self, ticket_number: str, attachment_id: str) -> tuple[AttachmentInfo, bytes] | None:
        row = (
            await self._conn.execute(
                select(t.attachments).where(
                    t.attachments.c.ticket_number == ticket_number, t.attachments.c.attachment_id == attachment_id
                )
            )
        ).first()
        return (_attachment(row), row.content) if row is not None else None

    async def recent_numbers_of(self, org: str, requester_ids: Collection[str], limit: int) -> dict[str, list[str]]:
        """One index walk of `limit` rows per requester (not a ranking of all their tickets: an
        integration submitting for one requester id gathers thousands), in the index's own order —
        sorting by anything more would read every ticket of the requester."""
        if not requester_ids:
            return {}
        c = t.tickets.c
        newest = [
            select(c.requester_id, c.ticket_number, c.submitted_at)
            .where(c.organization == org, c.requester_id == requester_id)
            .order_by(c.submitted_at.desc())
            .limit(limit)
            .subquery()
            for requester_id in sorted(set(requester_ids))
        ]
        per_requester = union_all(*(select(n.c.requester_id, n.c.ticket_number, n.c.submitted_at) for n in newest))
        return newest_first((r, n, at) for r, n, at in await self._conn.execute(per_requester))

    async def list(self, flt: TicketFilter, after: PageCursor | None, limit: int) -> list[Ticket]:
        c = t.tickets.c
        where = [c.organization == flt.organization]
        if flt.statuses:
            where.append(c.status.in_([s.value for s in flt.statuses]))
        if flt.priority is not None:
            where.append(c.priority == flt.priority.value)
        if flt.team:
            where.append(c.team == flt.team)
        if flt.requester_id:
            where.append(c.requester_id == flt.requester_id)
        if flt.assignee:
            where.append(c.assignee == flt.assignee)
        for word in flt.words:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(or_(c.title.ilike(pattern, escape="\\"), c.description.ilike(pattern, escape="\\")))
        if flt.submitted_after is not None:
            where.append(c.submitted_at >= flt.submitted_after)
        if flt.submitted_before is not None:
            where.append(c.submitted_at < flt.submitted_before)
        if after is not None:
            where.append(
                or_(
                    c.submitted_at < after.submitted_at,
                    and_(c.submitted_at == after.submitted_at, c.ticket_number < after.ticket_number),
                )
            )
        rows = await self._conn.execute(
            select(t.tickets).where(*where).order_by(c.submitted_at.desc(), c.ticket_number.desc()).limit(limit)
        )
        return [ticket_from_row(r) for r in rows]


class SqlRequestLog:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def find(self, org: str, request_id: str) -> RecordedRequest | None:
        row = (
            await self._conn.execute(
                select(t.requests).where(t.requests.c.organization == org, t.requests.c.request_id == request_id)
            )
        ).first()
        if row is None:
            return None
        return recorded_request(row._mapping)

    async def find_many(self, org: str, request_ids: Collection[str]) -> dict[str, RecordedRequest]:
        ids = [r for r in request_ids if r]
        if not ids:
            return {}
        rows = await self._conn.execute(
            select(t.requests).where(t.requests.c.organization == org, t.requests.c.request_id.in_(ids))
        )
        return {row.request_id: recorded_request(row._mapping) for row in rows}

    async def record(self, org: str, request_id: str, request: RecordedRequest) -> None:
        await self.record_many(org, [(request_id, request)])

    async def record_many(self, org: str, requests: Sequence[tuple[str, RecordedRequest]]) -> None:
        rows = request_rows(org, requests)
        if not rows:
            return
        try:
            await self._conn.execute(t.requests.insert(), rows)
        except IntegrityError as exc:
            raise DuplicateRequest(", ".join(r["request_id"] for r in rows)) from exc


class _Keyed(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


def recorded_request(row: _Keyed) -> RecordedRequest:
    """A row of the request log (SQLAlchemy's or asyncpg's) as what the call recorded."""
    return RecordedRequest(row["operation"], row["fingerprint"], row["ticket_number"], row["result_id"])


def request_rows(org: str, requests: Sequence[tuple[str, RecordedRequest]]) -> list[dict[str, Any]]:
    """Rows of the request log (calls without a request id are not recorded)."""
    return [
        {
            "organization": org,
            "request_id": request_id,
            "operation": r.operation,
            "fingerprint": r.fingerprint,
            "ticket_number": r.ticket_number,
            "result_id": r.result_id,
        }
        for request_id, r in requests
        if request_id
    ]
