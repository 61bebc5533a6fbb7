#!/usr/bin/env bash
# Rewrite deploy/constraints.txt: every package the image installs, pinned, as pip resolves
# pyproject.toml's runtime `dependencies` (no dev extras) right now. Run after changing them:
#   deploy/update-constraints.sh            (uses .venv/bin/python, i.e. CPython 3.11)
# Nothing is installed: pip only resolves (`--dry-run --report`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$PY" -m pip install --quiet --dry-run --ignore-installed --report "$report" . >/dev/null
"$PY" - "$report" > deploy/constraints.txt <<'EOF'
import json
import sys

print("""\
# Every package the supportflow image installs, pinned: pyproject.toml's runtime `dependencies`
# (no dev extras) and everything they pull in, resolved for CPython 3.11 on Linux by
# deploy/update-constraints.sh. The Dockerfile installs exactly these, then the project with
# `pip install --constraint deploy/constraints.txt .` and `pip check`. tests/deploy fails when a
# pin in pyproject.toml is missing here or differs.""")
installs = json.load(open(sys.argv[1]))["install"]
pins = {i["metadata"]["name"]: i["metadata"]["version"] for i in installs if not i.get("requested")}
for name in sorted(pins, key=str.lower):
    print(f"{name}=={pins[name]}")
EOF
echo "deploy/constraints.txt: $(grep -vc '^#' deploy/constraints.txt) pins"
