"""The README's first steps, as a newcomer takes them: `./dev up` (the launcher on SQLite, with its
local mail sink), then `./dev demo` in another terminal — which takes a ticket through the whole
process and exits 0 — and the demo's advice when the system is not there or signs tokens with
another key."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from services.cli import DEV_USERS
from services.demo.cast import CAST
from tests.launcher.test_up_postgres import SUPPORTFLOW, free_port_offset, wait_for_line
from tests.support.processes import REPO_ROOT, free_port, spawn, stop_process, tail

UP_WITHIN = 180.0


def demo(offset: int, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTFLOW_")}
    return subprocess.run(
        [str(SUPPORTFLOW), "demo", f"--port-offset={offset}"],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
def test_up_then_demo_takes_a_ticket_through_the_whole_process(tmp_path: Path) -> None:
    offset, nats_port, smtp_port = free_port_offset(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTFLOW_")} | {"PYTHONUNBUFFERED": "1"}
    log, maildir = tmp_path / "up.log", tmp_path / "data" / "mail" / "new"
    argv = [str(SUPPORTFLOW), "up", "--data-dir", str(tmp_path / "data"), "--nats-port", str(nats_port)]
    argv += [f"--port-offset={offset}", "--smtp-port", str(smtp_port)]
    launcher = spawn(argv, log_path=log, env=env, cwd=REPO_ROOT)
    try:
        wait_for_line(log, "supportflow is up", launcher, UP_WITHIN)

        foreign = demo(offset, SUPPORTFLOW_JWT_SECRET="not-the-key-the-services-run-with-0123456789")
        assert foreign.returncode == 1
        assert "intake refused the demo's development token" in foreign.stderr
        assert "export the same value" in foreign.stderr

        done = demo(offset)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{tail(log, 60)}"
        out = done.stdout
        [number] = re.findall(r"✔ (TS\d{14}) went through the whole process", out)
        assert len(re.findall(r"^── \d+\. ", out, re.MULTILINE)) == 15, "every step of the story"
        assert "Rule_Routing_SoftwareFault" in out, "the DMN rules that routed it"
        assert "⏱ assign (PT1H on cn-workdays): running, due " in out, "a clock and its due time"
        assert out.count("✘ refused, FAILED_PRECONDITION") == 2, "approver ≠ author, reviewer ≠ performer"
        assert "intake shows the ticket as CLOSED" in out
        # The workflow's history names who did a step: the person, or "workflow" for its own.
        assert re.search(r"张伟 \(engineer-2\)\s+ticket\.assigned: ", out), "the engineer's form named the handler"
        assert re.search(r"\d  workflow\s+ticket\.classified: ", out), "classification is the workflow's own step"
        assert re.search(
            rf"e-mail\s+li\.lei@acme\.example\s+ticket\.closed\s+closure\s+zh-CN\s+sent\s+【技术支持】{number}号", out
        )
        assert "15 e-mail, 0 webhook" in out
        mails = [p for p in maildir.iterdir() if number in p.read_text(errors="replace")]
        assert len(mails) == 15, "the mail sink holds every mail the demo listed"

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=120) == 0, tail(log, 40)
    finally:
        stop_process(launcher, timeout=60)


def test_demo_without_a_running_system_says_how_to_start_it() -> None:
    offset = free_port_offset()
    refused = demo(offset)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"✘ nothing listens on 127.0.0.1:{50051 + offset} (intake) — start the system with ./dev up in another "
        "terminal (if you gave it --port-offset, give ./dev demo the same), then run ./dev demo again"
    )
    assert refused.stdout == ""


def test_the_demo_is_a_client_of_the_public_apis_only() -> None:
    """Like any upstream system, the demo knows the contracts in proto/ and the kit (tokens), never a
    service's code; the kit itself imports no service (import-linter's contract)."""
    imported: set[str] = set()
    for path in (REPO_ROOT / "services" / "demo").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                imported.add(node.module)
    ours = {name for name in imported if name.split(".")[0] == "services"}
    assert ours, "the walk found the demo's imports"
    assert {name for name in ours if not name.startswith(("services.demo", "services.kit."))} == set()
    assert {name for name in imported if name.startswith("supportflow.")} >= {
        "supportflow.intake.v1",
        "supportflow.workflow.v1",
        "supportflow.notify.v1",
    }


def test_the_demo_acts_as_the_people_up_prints_tokens_for() -> None:
    """The demo's people are `./dev up`'s development users (same roles and groups), so what it does
    can be repeated by hand with the tokens `up` prints."""
    users = {sub: (set(roles), set(groups)) for sub, roles, groups in DEV_USERS}
    assert {p.subject: (set(p.roles), set(p.groups)) for p in CAST} == {p.subject: users[p.subject] for p in CAST}
