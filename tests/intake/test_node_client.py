"""A client generated in another language from `proto/` alone can use intake: the Node.js client in
tests/interop/node (@grpc/grpc-js + @grpc/proto-loader, no Python anywhere) submits a complete
ticket, reads it back and gets a readable field violation for a bad one. What it sent is then
checked from the Python side, so a lossy field (bytes, timestamps, non-ASCII text) would show."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake
from tests.intake.conftest import auth, token

NODE_CLIENT = Path(__file__).resolve().parents[1] / "interop" / "node"
NUMBER = re.compile(r"^TS\d{14}$")
TIMEOUT_S = 60


async def run_node_client(port: int, tok: str, request_id: str) -> dict[str, Any]:
    """Run submit_ticket.js against intake and return its JSON line."""
    node = shutil.which("node")
    # Fail, never skip: Node is part of the development and CI machines.
    assert node, "`node` is not on PATH: install Node.js 20+ (the cross-language client test needs it)"
    assert (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir(), (
        f"{NODE_CLIENT}/node_modules is missing: run ./dev once (it runs npm ci there)"
    )
    # Asynchronous on purpose: intake is served by this very event loop, so a blocking
    # subprocess.run would stall the server the client is calling.
    proc = await asyncio.create_subprocess_exec(
        node,
        "submit_ticket.js",
        f"127.0.0.1:{port}",
        request_id,
        cwd=NODE_CLIENT,
        env={**os.environ, "SUPPORTFLOW_TOKEN": tok},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"node client exited {proc.returncode}:\n{err.decode()}"
    result: dict[str, Any] = json.loads(out)
    return result


def instant(timestamp: dict[str, Any]) -> datetime:
    """A google.protobuf.Timestamp as proto-loader renders it (int64 seconds as a string)."""
    return datetime.fromtimestamp(int(timestamp["seconds"]), UTC).replace(microsecond=timestamp["nanos"] // 1000)


async def test_node_client_from_proto_alone_submits_and_reads_a_ticket(
    intake: Intake, stub: intake_pb2_grpc.IntakeServiceStub
) -> None:
    tok = token(sub="node-portal", roles=("integration",))
    request_id = str(uuid.uuid4())
    result = await run_node_client(intake.host.port, tok, request_id)
    sent, submitted, fetched = result["sent"], result["submitted"], result["fetched"]
    content = base64.b64decode(sent["attachments"][0]["content"])

    # What the Node client saw.
    number = submitted["ticket"]["ticket_number"]
    assert NUMBER.match(number), number
    assert submitted["replayed"] is False
    assert submitted["ticket"]["status"] == "TICKET_STATUS_PENDING"
    assert submitted["ticket"]["info_incomplete"] is False
    assert fetched["ticket_number"] == number
    assert fetched["title"] == sent["title"]
    assert fetched["requester"] == sent["requester"]
    assert fetched["contact"] == {"phone": "", **sent["contact"]}
    assert fetched["environment"] == sent["environment"]
    assert fetched["reproduction_steps"] == sent["reproduction_steps"]
    assert fetched["labels"] == sent["labels"]
    assert fetched["problem_type"] == "software_crash"
    assert instant(fetched["occurred_at"]) == instant(sent["occurred_at"])
    [attachment] = fetched["attachments"]
    assert attachment["sha256"] == hashlib.sha256(content).hexdigest()
    assert int(attachment["size_bytes"]) == len(content)

    # The same ticket read by a Python client: the bytes and the instant arrived unchanged.
    got = await stub.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=auth(tok))
    assert got.requester.name == "韩梅梅"
    assert got.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    stored = await stub.GetAttachment(
        intake_pb2.GetAttachmentRequest(ticket_number=number, attachment_id=got.attachments[0].attachment_id),
        metadata=auth(tok),
    )
    assert stored.content == content
    assert stored.attachment.content_type == "image/png"
    assert stored.attachment.kind == "screenshot"

    # The untitled submission: a standard status with standard google.rpc details, readable in Node.
    invalid = result["invalid"]
    assert invalid["code_name"] == "INVALID_ARGUMENT", invalid
    assert "field_violations" in invalid, f"no grpc-status-details-bin trailer: {invalid}"
    assert invalid["status_code"] == 3  # google.rpc.Code.INVALID_ARGUMENT
    assert ("title", "is required") in [(v["field"], v["description"]) for v in invalid["field_violations"]], invalid
