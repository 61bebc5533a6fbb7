"""The default bundle's diagrams open, render with their layout and save cleanly in Camunda Modeler
(Platform 7) and bpmn.io (issue #3). Both are built on bpmn-io's moddle libraries, so
tests/interop/node/check_diagrams.mjs does what their importers do with those very libraries
(bpmn-moddle + camunda-bpmn-moddle, dmn-moddle + camunda-dmn-moddle, modeler-moddle): every import
warning, every element the diagram does not draw, and everything a save would lose or change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bpmn"
NODE_DIR = ROOT / "tests" / "interop" / "node"
SCRIPT = "check_diagrams.mjs"
TIMEOUT_S = 120
DIAGRAMS = {
    "change-approval.bpmn",
    "classify.bpmn",
    "dual-review.bpmn",
    "escalate.bpmn",
    "support-ticket.bpmn",
    "dmn/priority.dmn",
    "dmn/routing.dmn",
    "dmn/sla-targets.dmn",
}


def check_diagrams(folder: Path) -> dict[str, dict[str, Any]]:
    """Run the check over `folder`; its JSON lines by file (relative to `folder`)."""
    node = shutil.which("node")
    # Fail, never skip: Node is part of the development and CI machines.
    assert node, "`node` is not on PATH: install Node.js 20+ (the diagram check runs bpmn-io's moddle in Node)"
    for package in ("bpmn-moddle", "camunda-bpmn-moddle", "dmn-moddle", "camunda-dmn-moddle", "modeler-moddle"):
        assert (NODE_DIR / "node_modules" / package).is_dir(), (
            f"{NODE_DIR}/node_modules/{package} is missing: run ./dev once (it runs npm ci there)"
        )
    proc = subprocess.run(
        [node, SCRIPT, str(folder)], cwd=NODE_DIR, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    # 0: all clean, 1: findings (in the JSON lines); anything else is the script failing.
    assert proc.returncode in (0, 1), f"{SCRIPT} exited {proc.returncode}:\n{proc.stderr}"
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    by_file = {r["file"]: r for r in results}
    assert len(by_file) == len(results), f"a file was reported twice: {[r['file'] for r in results]}"
    findings = any(r["warnings"] or r["missingShapes"] or r["roundTripDiffs"] for r in results)
    assert proc.returncode == (1 if findings else 0), proc.stdout
    return by_file


def on_disk(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".bpmn", ".dmn")}


def test_default_bundle_opens_renders_and_saves_cleanly() -> None:
    results = check_diagrams(BUNDLE)

    files = on_disk(BUNDLE)
    assert not DIAGRAMS - files, f"the default bundle lost a diagram: {sorted(DIAGRAMS - files)}"
    assert set(results) == files, f"checked {sorted(results)}, on disk {sorted(files)}"
    problems = {
        file: {key: r[key] for key in ("warnings", "missingShapes", "roundTripDiffs") if r[key]}
        for file, r in results.items()
        if r["warnings"] or r["missingShapes"] or r["roundTripDiffs"]
    }
    assert not problems, json.dumps(problems, indent=2, ensure_ascii=False)


def test_check_reports_an_unknown_attribute_a_missing_shape_and_a_dropped_comment(tmp_path: Path) -> None:
    """The check can fail: a copy with an attribute the Camunda descriptor does not know, another
    with a flow node's shape removed, a third with an XML comment a save would drop."""
    original = (BUNDLE / "support-ticket.bpmn").read_text(encoding="utf-8")

    attribute = original.replace("<bpmn:process ", '<bpmn:process camunda:notAnAttribute="x" ', 1)
    assert attribute != original
    (tmp_path / "unknown-attribute.bpmn").write_text(attribute, encoding="utf-8")

    shape = re.search(r'\s*<bpmndi:BPMNShape [^>]*bpmnElement="([^"]+)".*?</bpmndi:BPMNShape>', original, re.S)
    assert shape, "support-ticket.bpmn has no BPMNShape"
    (tmp_path / "missing-shape.bpmn").write_text(original.replace(shape.group(0), "", 1), encoding="utf-8")

    commented = original.replace("<bpmn:process ", "<!-- a note for the next editor -->\n  <bpmn:process ", 1)
    (tmp_path / "comment.bpmn").write_text(commented, encoding="utf-8")

    results = check_diagrams(tmp_path)

    assert set(results) == {"unknown-attribute.bpmn", "missing-shape.bpmn", "comment.bpmn"}
    warnings = results["unknown-attribute.bpmn"]["warnings"]
    assert any("unknown attribute <camunda:notAnAttribute>" in w for w in warnings), warnings
    missing = results["missing-shape.bpmn"]["missingShapes"]
    assert any(f'id="{shape.group(1)}"> has no BPMNShape' in m for m in missing), missing
    assert not results["missing-shape.bpmn"]["warnings"], results["missing-shape.bpmn"]
    diffs = results["comment.bpmn"]["roundTripDiffs"]
    assert any("XML comment(s) are dropped on save" in d for d in diffs), diffs
