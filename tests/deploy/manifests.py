"""Reading deploy/ the way kustomize would, as far as cross-references need: which objects a
kustomization (with its bases and components) declares, their pod templates and labels, the
settings each supportflow container gets. No cluster and no kustomize binary needed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.intake.settings import IntakeSettings
from services.kit.settings import ServiceSettings
from services.notify.settings import NotifySettings
from services.workflow.settings import WorkflowSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
IMAGE = "supportflow"
SHARED_CONFIG = "supportflow-config"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

#: The settings class each service reads in its `main()`.
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "workflow": WorkflowSettings,
    "notify": NotifySettings,
}
#: notify's optional Secret of the variables its directory.toml names (webhook URLs and secrets).
NOTIFY_WEBHOOKS_SECRET = "supportflow-notify-webhooks"


def env_names(settings: type[ServiceSettings]) -> set[str]:
    """The variables a settings class reads: `SUPPORTFLOW_` + each field's name, upper-case."""
    return {"SUPPORTFLOW_" + field.upper() for field in settings.model_fields}


COMMON_ENV = env_names(ServiceSettings)
ANY_SERVICE_ENV = set().union(*(env_names(s) for s in SETTINGS.values()))

Doc = dict[str, Any]


def load(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kustomization(folder: Path) -> Doc:
    doc = load(folder / "kustomization.yaml")[0]
    assert isinstance(doc, dict)
    return doc


def objects(folder: Path) -> list[Doc]:
    """Every object `folder`'s kustomization declares through `resources` and `components`,
    recursively, before patches and name transformations."""
    k = kustomization(folder)
    found: list[Doc] = []
    for entry in [*k.get("resources", []), *k.get("components", [])]:
        path = (folder / entry).resolve()
        found += objects(path) if path.is_dir() else load(path)
    return found


def generator_entries(folder: Path, generator: str, name: str) -> dict[str, str]:
    """KEY=VALUE pairs of a config/secret generator called `name`, in this kustomization and the
    ones it builds on (merges applied in build order: bases first)."""
    k = kustomization(folder)
    merged: dict[str, str] = {}
    for entry in [*k.get("resources", []), *k.get("components", [])]:
        path = (folder / entry).resolve()
        if path.is_dir():
            merged |= generator_entries(path, generator, name)
    for gen in k.get(generator, []):
        if gen["name"] != name:
            continue
        lines: list[str] = list(gen.get("literals", []))
        for env_file in gen.get("envs", []):
            lines += (folder / env_file).read_text(encoding="utf-8").splitlines()
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                merged[key.strip()] = value.strip()
    return merged


def by_kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") in kinds]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels only: the manifests use nothing else) against pod labels."""
    assert set(selector) <= {"matchLabels"}, f"unsupported selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def container_ports(workload: Doc) -> dict[str | int, int]:
    """containerPort by name and by number."""
    ports: dict[str | int, int] = {}
    for container in pod_spec(workload)["containers"]:
        for port in container.get("ports", []):
            ports[port["containerPort"]] = port["containerPort"]
            if "name" in port:
                ports[port["name"]] = port["containerPort"]
    return ports


@dataclass(frozen=True)
class ServiceContainer:
    """A container running one supportflow service (server or migration)."""

    workload: Doc
    container: Doc

    @property
    def service(self) -> str:
        command = self.container["command"]
        assert command[:2] == ["python", "-m"], command
        module: str = command[2]
        return module.removeprefix("services.")

    @property
    def is_migration(self) -> bool:
        return bool(self.container["command"][3:] == ["migrate"])

    @property
    def env(self) -> list[Doc]:
        env: list[Doc] = self.container.get("env", [])
        return env

    def literal(self, name: str) -> str | None:
        return next((e["value"] for e in self.env if e["name"] == name and "value" in e), None)

    def secret_ref(self, name: str) -> Doc | None:
        for e in self.env:
            if e["name"] == name and "valueFrom" in e:
                ref: Doc = e["valueFrom"]["secretKeyRef"]
                return ref
        return None

    @property
    def id(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}"


def service_containers(docs: list[Doc]) -> list[ServiceContainer]:
    return [
        ServiceContainer(w, c)
        for w in by_kind(docs, *WORKLOAD_KINDS)
        for c in pod_spec(w)["containers"]
        if c["image"].split(":")[0] == IMAGE
    ]


def walk(node: Any) -> Iterator[Any]:
    """Every mapping, list and scalar inside a parsed YAML document."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# --- what the tests look at ----------------------------------------------------------------------

COMPONENTS = sorted(p.parent for p in (DEPLOY / "components").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
BASE_DOCS = objects(BASE)
#: The base with every component: what any overlay can contain.
ALL_DOCS = BASE_DOCS + [doc for c in COMPONENTS for doc in objects(c)]
WORKLOADS = by_kind(ALL_DOCS, *WORKLOAD_KINDS)
CONTAINERS = service_containers(BASE_DOCS)
SERVERS = [c for c in CONTAINERS if not c.is_migration]
DEV = DEPLOY / "overlays" / "dev"
PRODUCTION = DEPLOY / "overlays" / "production"


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def name_of(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def cid(container: ServiceContainer) -> str:
    return container.id


def obj(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pods_selected_by(selector: Doc) -> list[Doc]:
    return [w for w in WORKLOADS if selects(selector, pod_labels(w))]


def numeric_port(pod: Doc, port: str | int) -> int:
    return container_ports(pod)[port]


def backend_port(service_name: str) -> int:
    """The container port behind a component's Service (nats, postgres)."""
    service = obj(ALL_DOCS, "Service", service_name)
    [pod] = pods_selected_by({"matchLabels": service["spec"]["selector"]})
    return numeric_port(pod, service["spec"]["ports"][0]["targetPort"])
