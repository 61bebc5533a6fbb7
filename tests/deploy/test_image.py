"""The container image's recipe (Dockerfile, .dockerignore, deploy/constraints.txt) holds together
with the code and the manifests. No Docker engine is needed: these read the files."""

from __future__ import annotations

import json
import re
import tomllib

from tests.deploy.manifests import ANY_SERVICE_ENV, BASE, ROOT, SETTINGS, container_ports, objects, service_containers

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


def args(keyword: str) -> list[str]:
    return [a for k, a in instructions() if k == keyword]


def env_entries() -> dict[str, str]:
    entries: dict[str, str] = {}
    for arguments in args("ENV"):
        entries |= dict(re.findall(r"(\w+)=(\S+)", arguments))
    return entries


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for requirement in requirements:
        m = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;]+)", requirement.strip())
        assert m, f"not pinned with ==: {requirement}"
        found[normalise(m[1])] = m[2]
    return found


def test_multi_stage_build_on_python_3_11_slim() -> None:
    assert "PYTHON_IMAGE=python:3.11-slim" in args("ARG")
    stages = args("FROM")
    assert len(stages) >= 2
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)


def test_runs_as_the_non_root_user_the_manifests_expect() -> None:
    assert args("USER")[-1] == "10001:10001"
    assert any("--uid 10001" in a for a in args("RUN"))
    for container in service_containers(objects(BASE)):
        assert container.workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_installs_the_project_with_pinned_runtime_dependencies_only() -> None:
    runs = " ".join(args("RUN"))
    assert "pip install --requirement deploy/constraints.txt" in runs
    assert "pip install --constraint deploy/constraints.txt ." in runs
    assert "pip check" in runs
    assert "[dev]" not in DOCKERFILE


def test_default_command_exists() -> None:
    command = json.loads(args("CMD")[-1])
    if command[:2] == ["python", "-m"]:
        module = command[2].replace(".", "/")
        assert (ROOT / f"{module}/__main__.py").is_file() or (ROOT / f"{module}.py").is_file(), command
    else:
        target = PYPROJECT["project"]["scripts"][command[0]]
        assert (ROOT / (target.split(":")[0].replace(".", "/") + ".py")).is_file(), target


def test_image_settings_exist_and_point_into_the_copied_bundle() -> None:
    """The settings' default paths lead into a source checkout; in site-packages they do not."""
    env = {k: v for k, v in env_entries().items() if k.startswith("SUPPORTFLOW_")}
    assert set(env) <= ANY_SERVICE_ENV, f"not settings: {sorted(set(env) - ANY_SERVICE_ENV)}"
    assert {"SUPPORTFLOW_CATALOG_FILE", "SUPPORTFLOW_DEFAULT_BUNDLE_DIR"} <= set(env)
    assert "bpmn /app/bpmn" in args("COPY")
    for value in env.values():
        assert value.startswith("/app/bpmn")
        assert (ROOT / value.removeprefix("/app/")).exists(), value


def test_exposed_ports_are_the_services_container_ports() -> None:
    exposed = {int(p) for a in args("EXPOSE") for p in a.split()}
    declared = {
        port
        for c in service_containers(objects(BASE))
        if not c.is_migration
        for key, port in container_ports(c.workload).items()
        if isinstance(key, str)
    }
    assert exposed == declared


def _dockerignore_regexes() -> list[tuple[bool, re.Pattern[str]]]:
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        rules.append((negated, re.compile(regex)))
    return rules


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path (or one of its parent folders) decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in _dockerignore_regexes():
        if any(regex.fullmatch(c) for c in candidates):
            included = negated
    return included


def test_dockerignore_keeps_what_the_image_needs_and_nothing_else() -> None:
    for arguments in args("COPY"):
        if arguments.startswith("--from"):
            continue
        *sources, _ = arguments.split()
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                name = file.relative_to(ROOT).as_posix()
                if "__pycache__" not in name and not name.endswith(".pyc"):
                    assert in_build_context(name), f"{name} (COPY {source}) is excluded by .dockerignore"
    for outside in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "benchmarks/__init__.py", "dev"):
        assert not in_build_context(outside), f"{outside} would be sent to the Docker build"
    assert not in_build_context("services/kit/__pycache__/settings.cpython-311.pyc")


def test_constraints_pin_every_runtime_dependency_at_its_version() -> None:
    runtime = pins(PYPROJECT["project"]["dependencies"])
    lines = [line for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    locked = pins([line for line in lines if line.strip()])
    wrong = {name: (version, locked.get(name)) for name, version in runtime.items() if locked.get(name) != version}
    assert not wrong, f"pyproject.toml vs deploy/constraints.txt (run deploy/update-constraints.sh): {wrong}"
    dev_only = set(pins(PYPROJECT["project"]["optional-dependencies"]["dev"])) - set(runtime)
    assert not dev_only & set(locked), f"dev tools in the image: {sorted(dev_only & set(locked))}"


def test_build_proves_zone_data_and_both_services_import() -> None:
    runs = " ".join(args("RUN"))
    assert "ZoneInfo('Asia/Shanghai')" in runs
    assert all(f"services.{service}.__main__" in runs for service in SETTINGS)
