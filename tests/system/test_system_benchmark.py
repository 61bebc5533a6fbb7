"""The system benchmark (benchmarks/system.py) runs to the end on a tiny setting and its figures add
up: every ticket submitted reached its task and its mail, each counted once. Nothing about speed:
timings on a shared machine are the benchmark's to print, not a test's to assert."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import system
from tests.support.nats import NatsServer
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.e2e


def test_a_short_run_accounts_for_every_ticket(
    own_nats_server: NatsServer,
    postgres_server: PostgresServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = system.parse_args(["--submitters", "3", "--seconds", "2", "--warm-up", "0.5", "--bare-instances", "5"])

    outcome = system.run(args, postgres_server, own_nats_server.url, tmp_path)
    ok = system.report(outcome, args)

    warm, measured = outcome.warm, outcome.measured
    assert warm.refused + measured.refused == []
    assert warm.lost | measured.lost == {}
    submitted = len(measured.submit_ms)
    assert submitted > 0
    assert measured.completed == submitted == len(measured.to_task_ms) == len(measured.to_mail_ms)
    assert all(ms > 0 for ms in measured.to_task_ms + measured.to_mail_ms)
    # One receipt per ticket under the default rules: none missing, none twice.
    assert outcome.mails == len(warm.submit_ms) + submitted
    assert outcome.bare_rate > 0
    assert ok
    printed = capsys.readouterr().out
    assert f"submitted {submitted}, completed {submitted}, refused 0, lost 0" in printed
    assert "with its task and its mail within 30s: yes" in printed
