"""A process admin validates and deploys a folder with `supportflow process validate|deploy`,
against the running workflow service, and reads precise problems when the folder is broken."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

import pytest

from services.process_admin import run
from services.workflow.bootstrap import Workflow
from tests.workflow.conftest import token

REPO = Path(__file__).resolve().parents[2]


def args(workflow: Workflow, action: str, folder: Path, tok: str) -> argparse.Namespace:
    return argparse.Namespace(
        action=action,
        folder=folder,
        org="acme",
        address=f"127.0.0.1:{workflow.host.port}",
        description="cli",
        token=tok,
    )


async def test_validate_then_deploy_the_default_bundle(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    admin = token("admin-1", roles=("process_admin",))
    assert await asyncio.to_thread(run, args(workflow, "validate", REPO / "bpmn", admin)) == 0
    out = capsys.readouterr().out
    assert "12 files are valid" in out, out  # bpmn/notify and organisations.toml are not part of it
    assert "version 1" in out
    assert await asyncio.to_thread(run, args(workflow, "deploy", REPO / "bpmn", admin)) == 0
    assert "deployed" in capsys.readouterr().out


async def test_a_broken_folder_lists_its_problems(
    workflow: Workflow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(REPO / "bpmn", folder)
    dmn = folder / "dmn" / "priority.dmn"
    text = dmn.read_text()
    assert "<text>-</text>" in text
    dmn.write_text(text.replace("<text>-</text>", "<text>[1..5]</text>", 1))
    admin = token("admin-1", roles=("process_admin",))
    assert await asyncio.to_thread(run, args(workflow, "validate", folder, admin)) == 1
    err = capsys.readouterr().err
    assert "dmn/priority.dmn" in err
    assert "FEEL" in err


async def test_a_non_admin_is_told_so(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    agent = token("agent-1", roles=("agent",))
    assert await asyncio.to_thread(run, args(workflow, "deploy", REPO / "bpmn", agent)) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
