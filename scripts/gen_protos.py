"""Regenerate the Python code for proto/ (one command: `python scripts/gen_protos.py`).

Output goes to proto/gen/python/; it is committed and never edited by hand. `--check` regenerates
into a temporary folder and exits 1 when the committed code differs (the test suite runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "proto" / "gen" / "python"


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.glob("supportflow/**/*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    # The mypy plugins live beside the interpreter running this script (the project's venv).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for pkg in {p.parent for p in out.rglob("*.py")} | {p.parent for p in out.rglob("*.pyi")}:
        d = pkg
        while d != out:
            (d / "__init__.py").touch()
            d = d.parent


def differences(a: Path, b: Path) -> list[str]:
    out: list[str] = []
    cmp = filecmp.dircmp(a, b)
    stack = [(cmp, Path("."))]
    while stack:
        c, rel = stack.pop()
        out += [f"only in committed: {rel / n}" for n in c.left_only if n != "__pycache__"]
        out += [f"missing: {rel / n}" for n in c.right_only]
        out += [f"stale: {rel / n}" for n in c.diff_files]
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        out += [f"stale: {rel / n}" for n in mismatch + errors if f"stale: {rel / n}" not in out]
        stack += [(sub, rel / name) for name, sub in c.subdirs.items() if name != "__pycache__"]
    return sorted(set(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    ns = parser.parse_args()
    if ns.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            diff = differences(OUT_DIR, Path(tmp)) if OUT_DIR.exists() else ["proto/gen/python missing"]
        if diff:
            print("generated code is stale; run `python scripts/gen_protos.py`:", *diff, sep="\n  ")
            return 1
        print("generated code is current")
        return 0
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    generate(OUT_DIR)
    print(f"generated {sum(1 for _ in OUT_DIR.rglob('*_pb2*.py'))} modules in {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
