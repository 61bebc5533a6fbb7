"""`supportflow up` with a PostgreSQL URL, as a newcomer runs it: the launcher process starts NATS,
the mail sink and the three services on one PostgreSQL database; a ticket submitted to intake is
classified by workflow, acknowledged by notify, and once a team lead assigns it intake shows its
handler (workflow's `ticket.assigned`); SIGTERM (Ctrl-C's twin) stops every process it started.
Also how the launcher prepares that database: created when missing, a clear message when the
server does not answer."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import text
from supportflow.common.v1 import types_pb2
from supportflow.intake.v1 import intake_pb2, intake_pb2_grpc
from supportflow.workflow.v1 import workflow_pb2 as wf
from supportflow.workflow.v1 import workflow_pb2_grpc

from services import shared_database
from services.kit.auth import mint_token
from services.kit.db import create_engine
from services.kit.settings import DEV_JWT_SECRET
from tests.intake.conftest import submission
from tests.support.postgres import PostgresServer, unique_database_name
from tests.support.processes import REPO_ROOT, free_port, free_ports, port_open, spawn, stop_process, tail

SUPPORTFLOW = Path(sys.executable).parent / "supportflow"
T = TypeVar("T")
PUBLIC_RELATIONS = """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
"""
PUBLIC_CONSTRAINTS = """
    SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
"""
UP_WITHIN = 180.0  # three services' migrations and start-up on a shared 2-core machine


def dev_auth(subject: str, roles: list[str], groups: list[str] = []) -> tuple[tuple[str, str], ...]:  # noqa: B006
    """A token `supportflow up` accepts (its services run with the development signing key)."""
    token = mint_token(secret=DEV_JWT_SECRET, subject=subject, org="acme", roles=roles, groups=groups)
    return (("authorization", f"Bearer {token}"),)


REQUESTER = dev_auth("E1001", ["requester"])
LEAD = dev_auth("lead-1", ["team_lead", "agent"], ["team_lead"])


def free_port_offset() -> int:
    """An offset that puts the launcher's service ports (50051-50053 + offset) on free ports."""
    return free_ports(3) - 50051


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: the launcher starts each in its own session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"supportflow up exited with {proc.returncode}:\n{tail(log, 80)}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} within {within:.0f}s:\n{tail(log, 80)}")


async def eventually(check: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 60.0) -> T:
    deadline = time.monotonic() + within
    value = await check()
    while not done(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        value = await check()
    return value


@pytest.mark.e2e
async def test_up_on_postgresql_runs_a_ticket_through_all_three_services_and_stops_everything_on_sigterm(
    fresh_database_url: str, tmp_path: Path
) -> None:
    offset, nats_port, smtp_port = free_port_offset(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTFLOW_")}
    env |= {"SUPPORTFLOW_DATABASE_URL": fresh_database_url, "PYTHONUNBUFFERED": "1"}
    log, maildir = tmp_path / "up.log", tmp_path / "data" / "mail" / "new"
    argv = [str(SUPPORTFLOW), "up", "--data-dir", str(tmp_path / "data"), "--nats-port", str(nats_port)]
    argv += [f"--port-offset={offset}", "--smtp-port", str(smtp_port)]
    launcher = spawn(argv, log_path=log, env=env, cwd=REPO_ROOT)
    started: list[int] = []
    try:
        wait_for_line(log, "supportflow is up", launcher, UP_WITHIN)
        assert "▶ PostgreSQL: using postgresql+asyncpg://" in log.read_text()
        started = children_of(launcher.pid)
        assert len(started) == 5, f"NATS, the mail sink and three services, not {started}"

        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{50051 + offset}") as intake_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{50052 + offset}") as workflow_channel,
        ):
            intake = intake_pb2_grpc.IntakeServiceStub(intake_channel)
            workflow = workflow_pb2_grpc.WorkflowServiceStub(workflow_channel)
            submitted = await intake.SubmitTicket(submission(), metadata=REQUESTER)
            number = submitted.ticket.ticket_number

            async def ticket() -> intake_pb2.Ticket:
                return await intake.GetTicket(intake_pb2.GetTicketRequest(ticket_number=number), metadata=REQUESTER)

            # priority.dmn / routing.dmn: a department's client crashing, urgency high, is P0 for development.
            classified = await eventually(ticket, lambda t: t.priority != types_pb2.PRIORITY_UNSPECIFIED)
            assert (classified.priority, classified.team) == (types_pb2.PRIORITY_P0, "开发团队 Development")
            assert classified.status == types_pb2.TICKET_STATUS_ACCEPTED

            async def mailed() -> bool:
                return any(number in p.read_text() for p in maildir.glob("*"))

            assert await eventually(mailed, bool), "notify's receipt reached the mail sink"

            async def assignment() -> list[wf.Task]:
                query = wf.ListTasksRequest(ticket_number=number, states=[wf.TASK_STATE_OPEN])
                found = await workflow.ListTasks(query, metadata=LEAD)
                return [t for t in found.tasks if t.element_id == "Task_AssignTicket"]

            (task,) = await eventually(assignment, bool)
            form = Struct()
            form.update({"assignee": "agent-1", "co_handlers": "engineer-2", "priority": "P0"})
            await workflow.CompleteTask(wf.CompleteTaskRequest(task_id=task.task_id, variables=form), metadata=LEAD)
            assigned = await eventually(ticket, lambda t: t.assignee != "")
            assert (assigned.assignee, assigned.team) == ("agent-1", "开发团队 Development"), "ticket.assigned"

        # One database, and nothing in it that two services could both claim: every table, index,
        # sequence and constraint carries its service's name; each has its own migration history.
        engine = create_engine(fresh_database_url)
        try:
            async with engine.connect() as conn:
                relations = set((await conn.execute(text(PUBLIC_RELATIONS))).scalars())
                constraints = set((await conn.execute(text(PUBLIC_CONSTRAINTS))).scalars())
        finally:
            await engine.dispose()
        version_tables = {f"alembic_version_{service}" for service in ("intake", "workflow", "notify")}
        assert version_tables <= relations
        unowned = {n for n in relations | constraints if not re.search(r"(intake|workflow|notify)_", n)}
        assert unowned == version_tables

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=120) == 0, tail(log, 40)
        assert [pid for pid in started if alive(pid)] == []
        assert not any(port_open(port) for port in (nats_port, smtp_port, *(50051 + offset + i for i in range(3))))
        assert "Ctrl-C: stopping" in log.read_text()
    finally:
        stop_process(launcher, timeout=60)
        for pid in started:  # only if the launcher failed to stop them: they run in their own sessions
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_a_missing_database_is_created_and_an_existing_one_is_used(postgres_server: PostgresServer) -> None:
    name = unique_database_name()
    url = postgres_server.url(name)
    try:
        first = shared_database.prepare(url)
        assert (first.created, first.shown.endswith(f"/{name}")) == (True, True)
        assert shared_database.prepare(url).created is False
    finally:
        postgres_server.drop_database(name)


def test_a_server_that_does_not_answer_is_named_with_what_to_do() -> None:
    port = free_port()
    url = f"postgresql+asyncpg://someone:s3cret@127.0.0.1:{port}/supportflow"
    with pytest.raises(shared_database.DatabaseNotReady) as refused:
        shared_database.prepare(url, timeout=2)
    message = str(refused.value)
    assert "does not answer" in message
    assert "fix SUPPORTFLOW_DATABASE_URL" in message
    assert "s3cret" not in message
    assert shared_database.shown(url) == f"postgresql+asyncpg://someone:***@127.0.0.1:{port}/supportflow"
