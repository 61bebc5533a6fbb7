"""notify as operators run it: `python -m services.notify` as its own process, configured by the
environment alone (settings, and the robots' URLs and secrets the directory names), refusing to
start on a broken configuration, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from supportflow.common.v1 import types_pb2

from tests.notify.conftest import SECRET, webhook_env
from tests.notify.sinks import HttpSink, SmtpSink
from tests.notify.stream_side import Ticket, publish, ticket_number
from tests.support.fixtures import ServiceFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
async def test_the_service_process_mails_calls_robots_and_stops_cleanly(
    caught_up: None,
    fresh_database_url: str,
    nats_url: str,
    nc: Client,
    smtp: SmtpSink,
    http: HttpSink,
    config_dir: Path,
    service_process_factory: ServiceFactory,
) -> None:
    env = {
        "SUPPORTFLOW_ENVIRONMENT": "test",
        "SUPPORTFLOW_DATABASE_URL": fresh_database_url,
        "SUPPORTFLOW_NATS_URL": nats_url,
        "SUPPORTFLOW_JWT_SECRET": SECRET,
        "SUPPORTFLOW_GRPC_HOST": "127.0.0.1",
        "SUPPORTFLOW_GRPC_PORT": "{grpc_port}",
        "SUPPORTFLOW_CONFIG_DIR": str(config_dir),
        "SUPPORTFLOW_SMTP_HOST": "127.0.0.1",
        "SUPPORTFLOW_SMTP_PORT": str(smtp.port),
        "SUPPORTFLOW_SENDER_POLL_SECONDS": "0.1",
        **webhook_env(http),
    }
    notify = service_process_factory("notify", "services.notify", env)
    ticket = Ticket(ticket_number(), lambda: datetime.now(UTC))
    await publish(nc, ticket.submitted(), ticket.classified(types_pb2.PRIORITY_P0, team="运维团队 Operations"))
    assert len(await smtp.wait_for(ticket.number, 1, within=20)) == 1
    (call,) = await http.wait_for("/dingtalk/robot/send", 1, within=20)
    assert call.query["access_token"] == ["ops-token-123"]
    assert "sign" in call.query
    assert notify.terminate() == 0  # SIGTERM: drained and stopped, not killed


def test_the_service_refuses_to_start_on_a_broken_configuration(tmp_path: Path) -> None:
    folder = tmp_path / "notify"
    shutil.copytree(ROOT / "bpmn" / "notify", folder)
    rules = folder / "rules.toml"
    rules.write_text(rules.read_text().replace('template = "closure"', 'template = "closing"'))
    env = {
        **os.environ,
        "SUPPORTFLOW_ENVIRONMENT": "dev",
        "SUPPORTFLOW_CONFIG_DIR": str(folder),
        "SUPPORTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never.db'}",
        "SUPPORTFLOW_NATS_URL": "nats://127.0.0.1:1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.notify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "rules.toml" in done.stderr
    assert "'closing'" in done.stderr
    assert not (tmp_path / "never.db").exists()  # refused before touching anything
