"""Bad input to SubmitTicket over real gRPC: every rejection is INVALID_ARGUMENT with a
`google.rpc.BadRequest` field violation naming the field, and the service keeps serving."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake
from tests.intake.conftest import auth, submission, token

MIB = 1024 * 1024
SUBMIT = "/supportflow.intake.v1.IntakeService/SubmitTicket"
CATALOGUE = Path(__file__).resolve().parents[2] / "bpmn" / "organisations.toml"


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of the BadRequest detail in the status trailer."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no grpc-status-details-bin trailer on {err.code()}: {err.details()}"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def described(err: grpc.aio.AioRpcError, field: str) -> str:
    """The description(s) of `field`'s violation; fails if the field is not named."""
    got = violations(err)
    texts = [d for f, d in got if f == field]
    assert texts, f"no violation for {field!r}; got {got}"
    return " | ".join(texts)


async def rejected(stub: intake_pb2_grpc.IntakeServiceStub, req: intake_pb2.SubmitTicketRequest, tok: str = "") -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SubmitTicket(req, metadata=auth(tok or token()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return err.value


async def assert_still_serving(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    resp = await stub.SubmitTicket(submission(), metadata=auth(token()))
    assert resp.ticket.ticket_number.startswith("TS")
    assert not resp.replayed


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(dt)
    return out


# ---- required fields ----


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"description": ""}, "description"),
        ({"requester": {"id": "E1001", "department": "Finance"}}, "requester.name"),
        ({"contact": {}}, "contact"),
        ({"channel": ""}, "channel"),
        ({"problem_type": ""}, "problem_type"),
        ({"impact_scope": ""}, "impact_scope"),
        ({"urgency": ""}, "urgency"),
        ({"request_id": ""}, "request_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_missing_required_field_is_named(
    stub: intake_pb2_grpc.IntakeServiceStub, overrides: dict[str, Any], field: str
) -> None:
    err = await rejected(stub, submission(**overrides))
    assert "required" in described(err, field)


# ---- limits ----


def _attachment(size: int, name: str = "a.log") -> dict[str, Any]:
    return {"file_name": name, "content": b"x" * size, "kind": "log", "content_type": "text/plain"}


LIMITS: list[tuple[str, Callable[[], dict[str, Any]], str, str]] = [
    ("title", lambda: {"title": "t" * 201}, "title", "the limit is 200"),
    ("description", lambda: {"description": "d" * 20_001}, "description", "the limit is 20000"),
    (
        "attachment-count",
        lambda: {"attachments": [_attachment(10, f"f{i}.log") for i in range(21)]},
        "attachments",
        "can hold 20 attachments",
    ),
    (
        "attachment-size",
        lambda: {"attachments": [_attachment(10 * MIB + 1)]},
        "attachments[0].content",
        "the limit is 10 MiB per file",
    ),
    (
        "attachments-total",
        lambda: {"attachments": [_attachment(9 * MIB, f"f{i}.log") for i in range(5)]},
        "attachments",
        "the limit is 40 MiB",
    ),
    ("labels", lambda: {"labels": [f"l{i}" for i in range(21)]}, "labels", "the limit is 20"),
    (
        "reproduction-step",
        lambda: {"reproduction_steps": ["ok", "s" * 2_001]},
        "reproduction_steps[1]",
        "the limit is 2000",
    ),
]


@pytest.mark.parametrize(("make", "field", "limit_text"), [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS])
async def test_exceeded_limit_is_named_with_the_limit(
    stub: intake_pb2_grpc.IntakeServiceStub, make: Callable[[], dict[str, Any]], field: str, limit_text: str
) -> None:
    err = await rejected(stub, submission(**make()))
    assert limit_text in described(err, field)
    await assert_still_serving(stub)


async def test_limits_are_inclusive(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    req = submission(
        title="t" * 200,
        labels=[f"l{i}" for i in range(20)],
        attachments=[_attachment(10 * MIB, "exactly-10MiB.log")],
    )
    ticket = (await stub.SubmitTicket(req, metadata=auth(token()))).ticket
    assert len(ticket.title) == 200
    assert len(ticket.labels) == 20
    assert ticket.attachments[0].size_bytes == 10 * MIB


# ---- malformed values ----


async def test_bad_email_is_named(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    err = await rejected(stub, submission(contact={"email": "not-an-address"}))
    assert "not-an-address" in described(err, "contact.email")


async def test_attachment_file_name_with_a_path_is_rejected(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    att = [_attachment(10, "ok.log"), _attachment(10, "../../etc/passwd")]
    err = await rejected(stub, submission(attachments=att))
    assert "/" in described(err, "attachments[1].file_name")
    assert all(f != "attachments[0].file_name" for f, _ in violations(err))


async def test_unknown_attachment_kind_is_rejected(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    att = [{"file_name": "clip.mp4", "content": b"data", "kind": "video"}]
    err = await rejected(stub, submission(attachments=att))
    text = described(err, "attachments[0].kind")
    assert "video" in text
    for kind in ("screenshot", "log", "recording", "other"):
        assert kind in text


async def test_unknown_problem_type_lists_the_allowed_codes(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    err = await rejected(stub, submission(problem_type="printer_on_fire"))
    text = described(err, "problem_type")
    assert "printer_on_fire" in text
    allowed = tomllib.loads(CATALOGUE.read_text())["defaults"]["problem_types"]
    assert allowed, "the catalogue defines problem types"
    for code in allowed:
        assert code in text


async def test_occurred_at_in_the_future_is_rejected(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    err = await rejected(stub, submission(occurred_at=ts(future)))
    assert "future" in described(err, "occurred_at")
    # A moment in the past is fine.
    past = datetime.now(UTC) - timedelta(hours=2)
    ok = await stub.SubmitTicket(submission(occurred_at=ts(past)), metadata=auth(token()))
    assert ok.ticket.occurred_at.ToDatetime(tzinfo=UTC) == past


async def test_unknown_organisation_is_named(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    err = await rejected(stub, submission(organization="nosuchorg"), tok=token(org="nosuchorg"))
    assert "nosuchorg" in described(err, "organization")


async def test_many_violations_are_reported_in_one_response(stub: intake_pb2_grpc.IntakeServiceStub) -> None:
    req = submission(
        title="",
        description="",
        contact={"email": "nope"},
        channel="carrier_pigeon",
        urgency="",
        labels=[f"l{i}" for i in range(21)],
    )
    err = await rejected(stub, req)
    fields = {f for f, _ in violations(err)}
    assert {"title", "description", "contact.email", "channel", "urgency", "labels"} <= fields


# ---- wrong wire types and invalid UTF-8, sent as hand-made protobuf bytes ----


def _raw_submit(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        SUBMIT, request_serializer=None, response_deserializer=intake_pb2.SubmitTicketResponse.FromString
    )


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        (b"\x18\x05", "title", "wrong type"),
        (b"\x1a\x03\xff\xfe\xfd", "title", "UTF-8"),
        (b"\x22\x04\x12\x02\xff\xfe", "requester.name", "UTF-8"),
    ],
    ids=["title-as-varint", "title-invalid-utf8", "requester-name-invalid-utf8"],
)
async def test_malformed_bytes_name_the_field(
    intake: Intake, stub: intake_pb2_grpc.IntakeServiceStub, raw: bytes, field: str, problem: str
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{intake.host.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _raw_submit(channel)(raw, metadata=auth(token()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert problem in described(err.value, field)
    await assert_still_serving(stub)


async def test_malformed_bytes_after_a_valid_request_are_caught(intake: Intake) -> None:
    """A wrong-typed title appended to an otherwise complete request still names `title`."""
    raw = submission().SerializeToString() + b"\x18\x05"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{intake.host.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _raw_submit(channel)(raw, metadata=auth(token()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "wrong type" in described(err.value, "title")


async def test_service_keeps_serving_after_a_burst_of_bad_requests(
    intake: Intake, stub: intake_pb2_grpc.IntakeServiceStub
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{intake.host.port}") as channel:
        call = _raw_submit(channel)
        for raw in (b"\x18\x05", b"\x1a\x03\xff\xfe\xfd", b"\xff\xff\xff", b"\x22\x04\x12\x02\xff\xfe"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(raw, metadata=auth(token()))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for bad in (submission(title=""), submission(problem_type="nope"), submission(request_id="")):
        await rejected(stub, bad)
    await assert_still_serving(stub)
