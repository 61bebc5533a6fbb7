"""The Kubernetes manifests (deploy/) hold together with the code: the mistakes that otherwise show
only on a cluster, or not at all. A kustomization naming a file that is not there (or a file no
kustomization names), a misspelt SUPPORTFLOW_* name (the settings ignore unknown variables), a value
the settings reject, a probe on a port nothing listens on, a grace period shorter than the
service's own shutdown, a container that is not locked down or has no memory limit.
Network and overlays: test_network.py, test_overlays.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.kit.rpc.server import LIVENESS
from tests.deploy.manifests import (
    ANY_SERVICE_ENV,
    BASE,
    COMMON_ENV,
    CONTAINERS,
    DEPLOY,
    KUSTOMIZATIONS,
    NOTIFY_WEBHOOKS_SECRET,
    OVERLAYS,
    ROOT,
    SERVERS,
    SETTINGS,
    SHARED_CONFIG,
    WORKLOADS,
    Doc,
    ServiceContainer,
    cid,
    container_ports,
    env_names,
    generator_entries,
    kustomization,
    load,
    name_of,
    pod_spec,
    rel,
)

#: After the gRPC server and the background workers, shutdown drains NATS for up to this long
#: (services/kit/messaging.py).
NATS_DRAIN_SECONDS = 10


def setting_default(service: str, field: str) -> Any:
    return SETTINGS[service].model_fields[field].default


# --- files and kustomizations --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=rel)
def test_every_yaml_file_parses_into_objects_or_json_patches(path: Path) -> None:
    docs = load(path)
    assert docs, f"{rel(path)} is empty"
    for doc in docs:
        if isinstance(doc, list):  # a JSON 6902 patch
            assert all(isinstance(op, dict) and {"op", "path"} <= op.keys() for op in doc), rel(path)
        else:
            assert isinstance(doc, dict), rel(path)
            assert {"apiVersion", "kind"} <= doc.keys(), rel(path)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=rel)
def test_kustomization_references_exist(folder: Path) -> None:
    k = kustomization(folder)
    assert k["kind"] == ("Component" if folder.parent.name == "components" else "Kustomization")
    for entry in k.get("resources", []):
        path = folder / entry
        assert path.exists(), f"{rel(folder)}: resource {entry} does not exist"
        if path.is_dir():
            assert kustomization(path)["kind"] == "Kustomization", f"{entry} is a Component: list it in components"
    for entry in k.get("components", []):
        assert (folder / entry / "kustomization.yaml").is_file(), f"{rel(folder)}: component {entry} does not exist"
        assert kustomization(folder / entry)["kind"] == "Component", f"{entry} is not a Component"
    for patch in k.get("patches", []):
        assert (folder / patch["path"]).is_file(), f"{rel(folder)}: patch {patch['path']} does not exist"
    for gen in [*k.get("configMapGenerator", []), *k.get("secretGenerator", [])]:
        for entry in [*gen.get("envs", []), *gen.get("files", [])]:
            source = entry.split("=", 1)[-1]
            assert (folder / source).is_file(), f"{rel(folder)}: {gen['name']} reads missing {source}"


def test_every_file_in_deploy_is_used_by_a_kustomization() -> None:
    """A manifest added to a folder but not to its kustomization is silently never deployed."""
    used: set[Path] = set()
    for folder in KUSTOMIZATIONS:
        k = kustomization(folder)
        used.add(folder / "kustomization.yaml")
        used |= {folder / r for r in k.get("resources", []) if (folder / r).is_file()}
        used |= {folder / p["path"] for p in k.get("patches", [])}
        for gen in [*k.get("configMapGenerator", []), *k.get("secretGenerator", [])]:
            used |= {folder / e.split("=", 1)[-1] for e in [*gen.get("envs", []), *gen.get("files", [])]}
    manifests = {p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".env", ".conf"}}
    unused = sorted(rel(p) for p in manifests - {u.resolve() for u in used})
    assert not unused, f"not referenced by any kustomization.yaml: {unused}"


def test_every_supportflow_variable_named_in_deploy_is_a_setting() -> None:
    """Manifests, patches, generator literals, comments and deploy/README.md alike: a misspelt
    SUPPORTFLOW_* variable is ignored by the service, so it must fail here."""
    files = [p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".env", ".conf", ".md", ".sh"}]
    unknown = {
        f"{rel(path)}: {name}"
        for path in files
        for name in re.findall(r"\bSUPPORTFLOW_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8"))
        if name not in ANY_SERVICE_ENV
    }
    assert not unknown, f"not a setting of any service: {sorted(unknown)}"


# --- the supportflow services --------------------------------------------------------------------


def test_each_service_has_a_deployment_and_a_migration_job() -> None:
    assert sorted((c.service, c.workload["kind"]) for c in CONTAINERS) == sorted(
        [(s, "Deployment") for s in SETTINGS] + [(s, "Job") for s in SETTINGS]
    )
    assert all(c.is_migration == (c.workload["kind"] == "Job") for c in CONTAINERS)


@pytest.mark.parametrize("container", CONTAINERS, ids=cid)
def test_command_runs_a_service_module_that_exists(container: ServiceContainer) -> None:
    command = container.container["command"]
    assert command[3:] in ([], ["migrate"]), command
    assert (ROOT / "services" / container.service / "__main__.py").is_file(), command


@pytest.mark.parametrize("container", CONTAINERS, ids=cid)
def test_env_names_are_settings_of_that_service(container: ServiceContainer) -> None:
    names = {e["name"] for e in container.env}
    unknown = names - env_names(SETTINGS[container.service])
    assert not unknown, f"{container.id}: {sorted(unknown)} are not {SETTINGS[container.service].__name__} fields"
    refs = [src.get("configMapRef", src.get("secretRef", {})).get("name") for src in container.container["envFrom"]]
    # Besides the shared ConfigMap (whose keys are checked), only notify's server reads the Secret of
    # the variables its directory names — optional, so a configuration without webhooks needs none.
    webhooks = [NOTIFY_WEBHOOKS_SECRET] if container.service == "notify" and not container.is_migration else []
    assert refs == [SHARED_CONFIG, *webhooks], f"{container.id}: envFrom {refs}"
    for source in container.container["envFrom"]:
        if "secretRef" in source:
            assert source["secretRef"].get("optional") is True, f"{container.id}: {source}"


@pytest.mark.parametrize("folder", [BASE, *OVERLAYS], ids=rel)
def test_shared_config_holds_only_settings_every_service_reads(folder: Path) -> None:
    config = generator_entries(folder, "configMapGenerator", SHARED_CONFIG)
    assert set(config) <= COMMON_ENV, f"not ServiceSettings fields: {sorted(set(config) - COMMON_ENV)}"
    assert config["SUPPORTFLOW_MIGRATE_ON_START"] == "false", "replicas must not race over migrations: use the Jobs"


def _placeholder(key: str) -> str:
    if key.endswith("database-url"):
        return "postgresql+asyncpg://supportflow:secret@db.example:5432/supportflow"
    if key.endswith("nats-url"):
        return "nats://nats.example:4222"
    return "x" * 48  # a JWT secret long enough for `prod`


@pytest.mark.parametrize("overlay", OVERLAYS, ids=rel)
@pytest.mark.parametrize("container", CONTAINERS, ids=cid)
def test_settings_load_from_what_an_overlay_gives(
    overlay: Path, container: ServiceContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's own settings class accepts the values (types, ranges, the `prod` secret rule)."""
    secrets = {
        name: generator_entries(overlay, "secretGenerator", name)
        for name in {g["name"] for g in kustomization(overlay).get("secretGenerator", [])}
    }
    env = dict(generator_entries(overlay, "configMapGenerator", SHARED_CONFIG))
    for entry in container.env:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        if ref["name"] in secrets:  # generated by the overlay: its real value, if it has the key
            if ref["key"] in secrets[ref["name"]]:
                env[entry["name"]] = secrets[ref["name"]][ref["key"]]
            else:
                assert ref.get("optional"), f"{rel(overlay)}: {ref['name']} lacks the key {ref['key']}"
        else:  # created by the operator (deploy/README.md)
            env[entry["name"]] = _placeholder(ref["key"])
    for name in ANY_SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = SETTINGS[container.service]()
    assert settings.migrate_on_start is False
    # Replicas rely on PostgreSQL (row locks, an advisory lock, SKIP LOCKED); the root file system
    # is read-only anyway, so a SQLite file could not be written.
    assert settings.database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("container", SERVERS, ids=cid)
def test_grpc_probes_ask_the_declared_grpc_port(container: ServiceContainer) -> None:
    port = int(container.literal("SUPPORTFLOW_GRPC_PORT") or setting_default(container.service, "grpc_port"))
    assert container_ports(container.workload).get("grpc") == port, "containerPort `grpc` must be where it listens"
    # Readiness is the overall status (NOT_SERVING while the database is unreachable); liveness is
    # the name the services keep SERVING through a database outage, so an outage restarts nothing.
    for kind, service in (("startupProbe", ""), ("readinessProbe", ""), ("livenessProbe", LIVENESS)):
        probe = container.container[kind]
        assert probe.get("grpc") == {"port": port, "service": service}, f"{kind}: gRPC health {service!r} on {port}"


@pytest.mark.parametrize("container", SERVERS, ids=cid)
def test_metrics_port_is_declared_where_prometheus_is_told(container: ServiceContainer) -> None:
    port = generator_entries(BASE, "configMapGenerator", SHARED_CONFIG)["SUPPORTFLOW_METRICS_PORT"]
    assert container_ports(container.workload).get("metrics") == int(port)
    annotations = container.workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == port


@pytest.mark.parametrize("container", SERVERS, ids=cid)
def test_termination_grace_outlasts_the_services_shutdown(container: ServiceContainer) -> None:
    """SIGTERM → in-flight calls get the grace, background workers as long again, then NATS drains
    (services/kit/rpc/server.py); the kubelet's SIGKILL must not come first."""
    grace = float(
        container.literal("SUPPORTFLOW_SHUTDOWN_GRACE_SECONDS")
        or setting_default(container.service, "shutdown_grace_seconds")
    )
    pre_stop = container.container.get("lifecycle", {}).get("preStop", {})
    sleep = float(pre_stop["exec"]["command"][1]) if "exec" in pre_stop else 0.0
    period = pod_spec(container.workload).get("terminationGracePeriodSeconds", 30)
    needed = sleep + 2 * grace + 1 + NATS_DRAIN_SECONDS
    assert period > needed, f"terminationGracePeriodSeconds {period} ≤ {needed}"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_migration_job_gets_the_services_database_and_credentials(service: str) -> None:
    server = next(c for c in SERVERS if c.service == service)
    job = next(c for c in CONTAINERS if c.is_migration and c.service == service)
    assert job.secret_ref("SUPPORTFLOW_DATABASE_URL") == server.secret_ref("SUPPORTFLOW_DATABASE_URL")
    # Outside `dev` the settings refuse to load without a JWT secret, even for `migrate`.
    assert job.secret_ref("SUPPORTFLOW_JWT_SECRET") == server.secret_ref("SUPPORTFLOW_JWT_SECRET")
    config_maps = [src for src in server.container["envFrom"] if "configMapRef" in src]
    assert job.container["envFrom"] == config_maps, "the server's settings, not its webhook secrets"
    spec = job.workload["spec"]
    assert pod_spec(job.workload)["restartPolicy"] in {"Never", "OnFailure"}
    assert spec["backoffLimit"] >= 1
    assert spec["ttlSecondsAfterFinished"] > 0


# --- every workload ------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", WORKLOADS, ids=name_of)
def test_workloads_are_hardened(workload: Doc) -> None:
    pod = pod_spec(workload)
    pod_sc = pod.get("securityContext", {})
    assert pod.get("automountServiceAccountToken") is False, "nothing here talks to the Kubernetes API"
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        sc = {**pod_sc, **container.get("securityContext", {})}
        where = f"{name_of(workload)} {container['name']}"
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("runAsUser", 1) != 0, where
        assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert not sc.get("privileged", False), where
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
        assert not sc.get("capabilities", {}).get("add"), where
        if container["image"].split(":")[0] == "supportflow":
            assert sc.get("runAsUser") == 10001, f"{where}: the image's user (Dockerfile USER)"


_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def _quantity(value: str | int) -> float:
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match, f"not a quantity: {text}"
    return float(match[1]) * _UNITS[match[2]]


@pytest.mark.parametrize("workload", WORKLOADS, ids=name_of)
def test_workloads_have_requests_and_limits_with_a_memory_limit(workload: Doc) -> None:
    """The workflow sandbox leans on the memory limit to contain a diagram's allocations."""
    for container in pod_spec(workload)["containers"]:
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            assert request is not None, f"{name_of(workload)}: no {resource} request"
            assert limit is not None, f"{name_of(workload)}: no {resource} limit"
            assert _quantity(limit) >= _quantity(request), f"{name_of(workload)}: {resource} limit < request"
