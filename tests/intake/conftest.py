"""Intake under test: the real service (in this process or as OS processes) on real PostgreSQL and
NATS JetStream, called over a real gRPC socket with real tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.bootstrap import Intake, bootstrap
from services.intake.settings import IntakeSettings
from services.kit.auth import mint_token

if TYPE_CHECKING:
    from tests.intake.workflow_events import StreamTail, Workflow

SECRET = "test-secret-for-supportflow-tests-0123456789"


def intake_env(database_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    return {
        "SUPPORTFLOW_ENVIRONMENT": "test",
        "SUPPORTFLOW_DATABASE_URL": database_url,
        "SUPPORTFLOW_NATS_URL": nats_url,
        "SUPPORTFLOW_JWT_SECRET": SECRET,
        "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
        "SUPPORTFLOW_OUTBOX_POLL_SECONDS": "0.2",
        **extra,
    }


def intake_settings(database_url: str, nats_url: str, **overrides: Any) -> IntakeSettings:
    """The settings of `intake_env`, for an intake run in this process on a free port."""
    values: dict[str, Any] = {
        k.removeprefix("SUPPORTFLOW_").lower(): v for k, v in intake_env(database_url, nats_url).items()
    }
    return IntakeSettings(**{**values, "grpc_port": 0, **overrides})


def token(sub: str = "agent-1", org: str = "acme", roles: tuple[str, ...] = ("agent",), **kw: Any) -> str:
    return mint_token(secret=SECRET, subject=sub, org=org, roles=roles, **kw)


def auth(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


def submission(**overrides: Any) -> intake_pb2.SubmitTicketRequest:
    """A complete, valid software-crash ticket; override any field."""
    fields: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "organization": "acme",
        "title": "ERP client crashes on month-end export",
        "requester": {"id": "E1001", "name": "李雷", "department": "Finance", "company": "ACME"},
        "contact": {"phone": "+86 138 0000 0000", "email": "li.lei@acme.example"},
        "channel": "portal",
        "problem_type": "software_crash",
        "impact_scope": "department",
        "urgency": "high",
        "description": "Exporting the ledger crashes the client; the finance team cannot close the month.",
        "environment": {"device": "ThinkPad T14", "os": "Windows 11", "software": "ERP", "software_version": "9.1.2"},
        "reproduction_steps": ["open Ledger", "choose Export → Excel", "client closes"],
        "attachments": [
            {"file_name": "crash.log", "content": b"Traceback...", "kind": "log", "content_type": "text/plain"}
        ],
        "labels": ["erp", "month-end"],
    }
    fields.update(overrides)
    return intake_pb2.SubmitTicketRequest(**fields)


@asynccontextmanager
async def running_intake(database_url: str, nats_url: str, **overrides: Any) -> AsyncIterator[Intake]:
    """Intake started in this process on a free port, shut down afterwards."""
    service = bootstrap(intake_settings(database_url, nats_url, **overrides))
    await service.start()
    try:
        yield service
    finally:
        await service.host.shutdown()


@pytest.fixture
async def intake(database_url: str, nats_url: str) -> AsyncIterator[Intake]:
    async with running_intake(database_url, nats_url) as service:
        yield service


@pytest.fixture
async def stub(intake: Intake) -> AsyncIterator[intake_pb2_grpc.IntakeServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{intake.host.port}") as channel:
        yield intake_pb2_grpc.IntakeServiceStub(channel)


@pytest.fixture
async def wf(intake: Intake, nats_url: str) -> AsyncIterator[Workflow]:
    """Stands in for the workflow service on the stream (see workflow_events.py)."""
    from tests.intake.workflow_events import workflow  # it imports this module's helpers

    async with workflow(nats_url) as w:
        yield w


@pytest.fixture
async def tail(wf: Workflow) -> StreamTail:
    """What reaches the stream from now on."""
    from tests.intake.workflow_events import StreamTail

    return await StreamTail.open(wf.js)
