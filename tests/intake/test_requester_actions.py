"""What requesters (and agents) do with a ticket after submitting it, over real gRPC: supplement,
comment, verify, rate, cancel and download attachments. Each change is visible through GetTicket,
emits exactly one event on the JetStream stream, survives a retried request_id, and is refused in
the wrong state (FAILED_PRECONDITION) or for the wrong caller (PERMISSION_DENIED)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import grpc
import pytest
from supportflow.common.v1 import types_pb2
from supportflow.events.v1 import events_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake
from tests.intake.conftest import auth, submission, token
from tests.intake.test_bad_input import described
from tests.intake.workflow_events import StreamTail, Workflow, published, resolve, ticket_when

Stub = intake_pb2_grpc.IntakeServiceStub
S = types_pb2
Metadata = tuple[tuple[str, str], ...]


class Person:
    """A requester with a token of their own."""

    def __init__(self) -> None:
        self.id = f"E-{uuid.uuid4().hex[:10]}"
        self.tok = token(sub=self.id, roles=("requester",))
        self.md: Metadata = auth(self.tok)


AGENT: Metadata = auth(token(sub="agent-7", roles=("agent",)))
GLOBEX_AGENT: Metadata = auth(token(sub="gx-agent", org="globex"))


def rid() -> str:
    return str(uuid.uuid4())


async def refused(call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, f"{err.value.code()}: {err.value.details()}"
    return err.value


async def submit(stub: Stub, who: Person, **overrides: object) -> intake_pb2.Ticket:
    req = submission(requester={"id": who.id, "name": "Han Meimei"}, **overrides)
    return (await stub.SubmitTicket(req, metadata=who.md)).ticket


def count(event_type: str, n: int) -> Callable[[intake_pb2.Ticket], bool]:
    return lambda t: sum(e.event_type == event_type for e in t.timeline) == n


# ---- SupplementTicket ----


async def test_supplement_fills_in_missing_information_once_per_request(
    stub: Stub, intake: Intake, tail: StreamTail
) -> None:
    me = Person()
    ticket = await submit(stub, me, attachments=[], environment={"os": "Windows 11"})
    number = ticket.ticket_number
    assert list(ticket.missing_info) == ["attachment:screenshot|log", "environment.software_version"]

    first = await stub.SupplementTicket(
        intake_pb2.SupplementTicketRequest(
            ticket_number=number,
            request_id=rid(),
            additional_description="Only ledgers with more than 10,000 rows crash.",
            environment=S.Environment(software_version="9.1.2"),
        ),
        metadata=me.md,
    )
    assert list(first.missing_info) == ["attachment:screenshot|log"]
    assert first.info_incomplete
    assert (first.environment.os, first.environment.software_version) == ("Windows 11", "9.1.2")
    assert first.description.startswith(ticket.description)
    assert first.description.endswith("Only ledgers with more than 10,000 rows crash.")

    screenshot = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64
    second_req = intake_pb2.SupplementTicketRequest(
        ticket_number=number,
        request_id=rid(),
        reproduction_steps=["sort by date first"],
        attachments=[
            S.AttachmentUpload(file_name="crash.png", content=screenshot, kind="screenshot", content_type="image/png")
        ],
    )
    second = await stub.SupplementTicket(second_req, metadata=me.md)
    assert not second.info_incomplete
    assert list(second.missing_info) == []
    (added,) = second.attachments
    assert (added.file_name, added.size_bytes, added.sha256) == (
        "crash.png",
        len(screenshot),
        hashlib.sha256(screenshot).hexdigest(),
    )
    assert list(second.reproduction_steps)[-1] == "sort by date first"

    # A retry (lost reply) changes nothing more: still one attachment, one extra step.
    again = await stub.SupplementTicket(second_req, metadata=me.md)
    assert [a.attachment_id for a in again.attachments] == [added.attachment_id]
    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=me.md)
    assert [a.attachment_id for a in got.attachments] == [added.attachment_id]
    assert list(got.reproduction_steps).count("sort by date first") == 1
    assert got.description == first.description
    assert not got.info_incomplete

    events = await published(intake.engine, tail, number, "ticket.supplemented")
    assert len(events) == 2
    one, two = (e.ticket_supplemented for e in events)
    assert one.additional_description == "Only ledgers with more than 10,000 rows crash."
    assert one.environment.software_version == "9.1.2"
    assert list(one.missing_info) == ["attachment:screenshot|log"]
    assert [(a.attachment_id, a.sha256, a.kind) for a in two.attachments] == [
        (added.attachment_id, added.sha256, "screenshot")
    ]
    assert list(two.reproduction_steps) == ["sort by date first"]
    assert list(two.missing_info) == []
    assert all((e.actor.subject, e.actor.role) == (me.id, "requester") for e in events)

    shown = await ticket_when(stub, number, count("ticket.supplemented", 2), me.tok)
    assert [(e.actor.subject, e.actor.role) for e in shown.timeline if e.event_type == "ticket.supplemented"] == [
        (me.id, "requester")
    ] * 2


async def test_supplement_is_refused_to_others_empty_or_after_cancellation(
    stub: Stub, intake: Intake, tail: StreamTail
) -> None:
    me, someone = Person(), Person()
    number = (await submit(stub, me, attachments=[])).ticket_number

    def supplement(request_id: str = "", text: str = "the log is attached") -> intake_pb2.SupplementTicketRequest:
        return intake_pb2.SupplementTicketRequest(
            ticket_number=number, request_id=request_id or rid(), additional_description=text
        )

    err = await refused(stub.SupplementTicket(supplement(), metadata=someone.md), grpc.StatusCode.PERMISSION_DENIED)
    assert "another requester" in err.details()
    # Agents see the ticket but supplementing is the requester's job.
    err = await refused(stub.SupplementTicket(supplement(), metadata=AGENT), grpc.StatusCode.PERMISSION_DENIED)
    assert "only the requester" in err.details()
    await refused(stub.SupplementTicket(supplement(), metadata=GLOBEX_AGENT), grpc.StatusCode.NOT_FOUND)
    err = await refused(stub.SupplementTicket(supplement(text="  "), metadata=me.md), grpc.StatusCode.INVALID_ARGUMENT)
    assert "must add something" in described(err, "additional_description")

    used = rid()
    await stub.SupplementTicket(supplement(used), metadata=me.md)
    err = await refused(
        stub.SupplementTicket(supplement(used, text="something else"), metadata=me.md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    described(err, "request_id")

    await stub.CancelTicket(intake_pb2.CancelTicketRequest(ticket_number=number, request_id=rid()), metadata=me.md)
    err = await refused(stub.SupplementTicket(supplement(), metadata=me.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert "cancelled" in err.details()

    assert len(await published(intake.engine, tail, number, "ticket.supplemented")) == 1


# ---- AddComment ----


async def test_comments_of_requester_and_agent_are_attributed_and_published_once(
    stub: Stub, intake: Intake, tail: StreamTail
) -> None:
    me = Person()
    number = (await submit(stub, me)).ticket_number
    log = b"2026-11-22 10:00:01 FATAL export\n" * 50
    mine_req = intake_pb2.AddCommentRequest(
        ticket_number=number,
        request_id=rid(),
        body="Still crashing after the restart.",
        attachments=[S.AttachmentUpload(file_name="export.log", content=log, kind="log", content_type="text/plain")],
    )
    mine = await stub.AddComment(mine_req, metadata=me.md)
    assert (mine.author.subject, mine.author.role, mine.body) == (
        me.id,
        "requester",
        "Still crashing after the restart.",
    )
    assert (mine.attachments[0].file_name, mine.attachments[0].sha256) == (
        "export.log",
        hashlib.sha256(log).hexdigest(),
    )

    theirs = await stub.AddComment(
        intake_pb2.AddCommentRequest(ticket_number=number, request_id=rid(), body="Please try ERP 9.1.3."),
        metadata=AGENT,
    )
    assert (theirs.author.subject, theirs.author.role) == ("agent-7", "agent")

    retried = await stub.AddComment(mine_req, metadata=me.md)
    assert retried.comment_id == mine.comment_id

    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=me.md)
    assert [(c.comment_id, c.author.subject, c.author.role, c.body) for c in got.comments] == [
        (mine.comment_id, me.id, "requester", "Still crashing after the restart."),
        (theirs.comment_id, "agent-7", "agent", "Please try ERP 9.1.3."),
    ]
    # The comment's file stays with the comment, not among the ticket's own attachments ...
    assert [a.file_name for a in got.attachments] == ["crash.log"]
    # ... and downloads like any other.
    file = await stub.GetAttachment(
        intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=mine.attachments[0].attachment_id),
        metadata=me.md,
    )
    assert file.content == log

    events = await published(intake.engine, tail, number, "ticket.commented")
    assert [(e.ticket_commented.comment_id, e.actor.subject, e.actor.role) for e in events] == [
        (mine.comment_id, me.id, "requester"),
        (theirs.comment_id, "agent-7", "agent"),
    ]
    assert events[0].ticket_commented.body == "Still crashing after the restart."
    assert events[0].ticket_commented.attachments[0].sha256 == hashlib.sha256(log).hexdigest()

    shown = await ticket_when(stub, number, count("ticket.commented", 2))
    assert [(e.actor.subject, e.actor.role) for e in shown.timeline if e.event_type == "ticket.commented"] == [
        (me.id, "requester"),
        ("agent-7", "agent"),
    ]


async def test_comments_are_refused_to_strangers_when_empty_and_on_closed_tickets(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me, someone = Person(), Person()
    number = (await submit(stub, me)).ticket_number

    def comment(body: str = "any news?") -> intake_pb2.AddCommentRequest:
        return intake_pb2.AddCommentRequest(ticket_number=number, request_id=rid(), body=body)

    err = await refused(stub.AddComment(comment(), metadata=someone.md), grpc.StatusCode.PERMISSION_DENIED)
    assert "another requester" in err.details()
    await refused(stub.AddComment(comment(), metadata=GLOBEX_AGENT), grpc.StatusCode.NOT_FOUND)
    err = await refused(stub.AddComment(comment(body=""), metadata=me.md), grpc.StatusCode.INVALID_ARGUMENT)
    assert "required" in described(err, "body")

    await wf.publish(number, events_pb2.TicketClosed(outcome="completed"))
    await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_CLOSED)
    err = await refused(stub.AddComment(comment(), metadata=me.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert "closed" in err.details()
    await refused(stub.AddComment(comment(), metadata=AGENT), grpc.StatusCode.FAILED_PRECONDITION)

    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=me.md)
    assert list(got.comments) == []
    assert await published(intake.engine, tail, number, "ticket.commented") == []


# ---- ConfirmResolution ----


async def test_accepting_a_resolution_completes_the_ticket(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me = Person()
    number = (await submit(stub, me)).ticket_number
    accept = intake_pb2.ConfirmResolutionRequest(ticket_number=number, request_id=rid(), accepted=True)

    err = await refused(stub.ConfirmResolution(accept, metadata=me.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert "only a resolved ticket" in err.details()

    await resolve(wf, stub, number)
    err = await refused(
        stub.ConfirmResolution(
            intake_pb2.ConfirmResolutionRequest(ticket_number=number, request_id=rid(), accepted=True), metadata=AGENT
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "only the requester" in err.details()

    done = await stub.ConfirmResolution(accept, metadata=me.md)
    assert done.status == S.TICKET_STATUS_COMPLETED
    again = await stub.ConfirmResolution(accept, metadata=me.md)
    assert again.status == S.TICKET_STATUS_COMPLETED

    events = await published(intake.engine, tail, number, "ticket.verified")
    assert [(e.ticket_verified.accepted, e.actor.subject) for e in events] == [(True, me.id)]
    shown = await ticket_when(stub, number, count("ticket.verified", 1), me.tok)
    assert shown.status == S.TICKET_STATUS_COMPLETED
    assert shown.timeline[-1].summary == "resolution accepted"


async def test_rejecting_a_resolution_resumes_handling(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me = Person()
    number = (await submit(stub, me)).ticket_number
    await resolve(wf, stub, number)

    err = await refused(
        stub.ConfirmResolution(
            intake_pb2.ConfirmResolutionRequest(ticket_number=number, request_id=rid(), accepted=False),
            metadata=me.md,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "what still fails" in described(err, "comment")

    back = await stub.ConfirmResolution(
        intake_pb2.ConfirmResolutionRequest(
            ticket_number=number, request_id=rid(), accepted=False, comment="export still crashes with 9.1.3"
        ),
        metadata=me.md,
    )
    assert back.status == S.TICKET_STATUS_IN_PROGRESS
    # Not resolved any more: nothing to verify until the next resolution.
    await refused(
        stub.ConfirmResolution(
            intake_pb2.ConfirmResolutionRequest(ticket_number=number, request_id=rid(), accepted=True),
            metadata=me.md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    events = await published(intake.engine, tail, number, "ticket.verified")
    assert [(e.ticket_verified.accepted, e.ticket_verified.comment) for e in events] == [
        (False, "export still crashes with 9.1.3")
    ]
    shown = await ticket_when(stub, number, count("ticket.verified", 1))
    assert shown.status == S.TICKET_STATUS_IN_PROGRESS
    assert shown.timeline[-1].summary == "resolution rejected: export still crashes with 9.1.3"


# ---- RateTicket ----


async def test_rating_comes_after_verification_and_only_once(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me, someone = Person(), Person()
    number = (await submit(stub, me)).ticket_number

    def rate(rating: int, comment: str = "") -> intake_pb2.RateTicketRequest:
        return intake_pb2.RateTicketRequest(ticket_number=number, request_id=rid(), rating=rating, comment=comment)

    await resolve(wf, stub, number)
    err = await refused(stub.RateTicket(rate(S.RATING_SATISFIED), metadata=me.md), grpc.StatusCode.FAILED_PRECONDITION)
    assert "once the resolution is verified" in err.details()

    await stub.ConfirmResolution(
        intake_pb2.ConfirmResolutionRequest(ticket_number=number, request_id=rid(), accepted=True), metadata=me.md
    )
    await refused(stub.RateTicket(rate(S.RATING_SATISFIED), metadata=someone.md), grpc.StatusCode.PERMISSION_DENIED)
    await refused(stub.RateTicket(rate(S.RATING_SATISFIED), metadata=AGENT), grpc.StatusCode.PERMISSION_DENIED)
    err = await refused(stub.RateTicket(rate(S.RATING_UNSPECIFIED), metadata=me.md), grpc.StatusCode.INVALID_ARGUMENT)
    described(err, "rating")

    first = rate(S.RATING_SATISFIED, "fast and friendly")
    rated = await stub.RateTicket(first, metadata=me.md)
    assert rated.rating == S.RATING_SATISFIED
    assert (await stub.RateTicket(first, metadata=me.md)).rating == S.RATING_SATISFIED
    err = await refused(
        stub.RateTicket(rate(S.RATING_DISSATISFIED), metadata=me.md), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "already rated satisfied" in err.details()

    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=me.md)
    assert got.rating == S.RATING_SATISFIED
    events = await published(intake.engine, tail, number, "ticket.rated")
    assert [(e.ticket_rated.rating, e.ticket_rated.comment, e.actor.subject) for e in events] == [
        (S.RATING_SATISFIED, "fast and friendly", me.id)
    ]
    shown = await ticket_when(stub, number, count("ticket.rated", 1))
    assert shown.timeline[-1].summary == "rated satisfied"


async def test_a_ticket_closed_by_the_process_can_still_be_rated(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me = Person()
    number = (await submit(stub, me)).ticket_number
    await resolve(wf, stub, number)
    # The requester never answered; the process closed the ticket.
    await wf.publish(number, events_pb2.TicketClosed(outcome="completed"))
    await ticket_when(stub, number, lambda t: t.status == S.TICKET_STATUS_CLOSED)

    rated = await stub.RateTicket(
        intake_pb2.RateTicketRequest(
            ticket_number=number, request_id=rid(), rating=S.RATING_DISSATISFIED, comment="nobody called back"
        ),
        metadata=me.md,
    )
    assert (rated.rating, rated.status) == (S.RATING_DISSATISFIED, S.TICKET_STATUS_CLOSED)
    events = await published(intake.engine, tail, number, "ticket.rated")
    assert [(e.ticket_rated.rating, e.ticket_rated.comment) for e in events] == [
        (S.RATING_DISSATISFIED, "nobody called back")
    ]


# ---- CancelTicket ----


async def test_requester_cancels_their_ticket_once(stub: Stub, intake: Intake, tail: StreamTail) -> None:
    me, someone = Person(), Person()
    number = (await submit(stub, me)).ticket_number
    cancel = intake_pb2.CancelTicketRequest(ticket_number=number, request_id=rid(), reason="works after a reboot")

    err = await refused(stub.CancelTicket(cancel, metadata=someone.md), grpc.StatusCode.PERMISSION_DENIED)
    assert "another requester" in err.details()
    await refused(stub.CancelTicket(cancel, metadata=GLOBEX_AGENT), grpc.StatusCode.NOT_FOUND)

    assert (await stub.CancelTicket(cancel, metadata=me.md)).status == S.TICKET_STATUS_CANCELLED
    assert (await stub.CancelTicket(cancel, metadata=me.md)).status == S.TICKET_STATUS_CANCELLED
    err = await refused(
        stub.CancelTicket(intake_pb2.CancelTicketRequest(ticket_number=number, request_id=rid()), metadata=me.md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "cancelled" in err.details()

    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=me.md)
    assert got.status == S.TICKET_STATUS_CANCELLED
    events = await published(intake.engine, tail, number, "ticket.cancelled")
    assert [(e.ticket_cancelled.reason, e.actor.subject, e.actor.role) for e in events] == [
        ("works after a reboot", me.id, "requester")
    ]
    shown = await ticket_when(stub, number, count("ticket.cancelled", 1))
    assert shown.timeline[-1].summary == "cancelled: works after a reboot"


async def test_agent_may_cancel_but_a_completed_ticket_stays_completed(
    stub: Stub, intake: Intake, wf: Workflow, tail: StreamTail
) -> None:
    me = Person()
    duplicate = (await submit(stub, me)).ticket_number
    by_agent = await stub.CancelTicket(
        intake_pb2.CancelTicketRequest(ticket_number=duplicate, request_id=rid(), reason="duplicate"), metadata=AGENT
    )
    assert by_agent.status == S.TICKET_STATUS_CANCELLED

    done = (await submit(stub, me)).ticket_number
    await resolve(wf, stub, done)
    await stub.ConfirmResolution(
        intake_pb2.ConfirmResolutionRequest(ticket_number=done, request_id=rid(), accepted=True), metadata=me.md
    )
    err = await refused(
        stub.CancelTicket(intake_pb2.CancelTicketRequest(ticket_number=done, request_id=rid()), metadata=me.md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "completed" in err.details()
    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=done), metadata=me.md)
    assert got.status == S.TICKET_STATUS_COMPLETED

    events = await published(intake.engine, tail, duplicate, "ticket.cancelled")
    assert [(e.actor.subject, e.actor.role, e.ticket_cancelled.reason) for e in events] == [
        ("agent-7", "agent", "duplicate")
    ]
    assert await tail.of(done, "ticket.cancelled") == []


# ---- GetAttachment ----


async def test_attachments_download_byte_for_byte_only_for_those_who_may_see_them(stub: Stub) -> None:
    me, someone = Person(), Person()
    binary = bytes(range(256)) * 300 + uuid.uuid4().bytes
    text = "导出失败 — export failed\r\n".encode() * 10
    ticket = await submit(
        stub,
        me,
        attachments=[
            S.AttachmentUpload(file_name="dump.bin", content=binary, kind="other"),
            S.AttachmentUpload(
                file_name="错误.log", content=text, kind="log", content_type="text/plain; charset=utf-8"
            ),
        ],
    )
    number = ticket.ticket_number

    for listed, content in zip(ticket.attachments, (binary, text), strict=True):
        for who in (me.md, AGENT):
            got = await stub.GetAttachment(
                intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=listed.attachment_id), metadata=who
            )
            assert got.content == content
            assert got.attachment.sha256 == hashlib.sha256(content).hexdigest() == listed.sha256
            assert got.attachment.size_bytes == len(content)
            assert got.attachment == listed
    assert [a.content_type for a in ticket.attachments] == ["application/octet-stream", "text/plain; charset=utf-8"]

    first = ticket.attachments[0].attachment_id
    request = intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=first)
    err = await refused(stub.GetAttachment(request, metadata=someone.md), grpc.StatusCode.PERMISSION_DENIED)
    assert "another requester" in err.details()
    await refused(stub.GetAttachment(request, metadata=GLOBEX_AGENT), grpc.StatusCode.NOT_FOUND)
    await refused(
        stub.GetAttachment(
            intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=str(uuid.uuid4())), metadata=me.md
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # Someone else's file cannot be fetched through a ticket one may see.
    other = await submit(stub, someone)
    await refused(
        stub.GetAttachment(
            intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=other.attachments[0].attachment_id),
            metadata=me.md,
        ),
        grpc.StatusCode.NOT_FOUND,
    )
