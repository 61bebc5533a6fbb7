"""The overlays: dev's generated credentials agree with its in-cluster PostgreSQL, production's
HPAs own the replica count and its hand-made Secret is documented key by key, and (with kustomize
or kubectl at hand) each overlay builds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.manifests import (
    ALL_DOCS,
    BASE_DOCS,
    CONTAINERS,
    DEPLOY,
    DEV,
    OVERLAYS,
    PRODUCTION,
    WORKLOAD_KINDS,
    backend_port,
    by_kind,
    generator_entries,
    kustomization,
    load,
    obj,
    objects,
    pod_spec,
    rel,
    walk,
)


def test_dev_overlay_runs_one_replica_of_each_with_in_cluster_nats_and_postgres() -> None:
    k = kustomization(DEV)
    assert sorted(k["components"]) == ["../../components/nats", "../../components/postgres"]
    deployments = {d["metadata"]["name"] for d in by_kind(BASE_DOCS, "Deployment")}
    assert {(r["name"], r["count"]) for r in k["replicas"]} == {(d, 1) for d in deployments}


def test_dev_secrets_agree_with_the_postgres_component() -> None:
    """Both services' database URLs reach the component's server with the password it was given."""
    postgres = obj(ALL_DOCS, "StatefulSet", "postgres")
    pg_env = {e["name"]: e for e in pod_spec(postgres)["containers"][0]["env"]}
    password_ref = pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    password = generator_entries(DEV, "secretGenerator", password_ref["name"])[password_ref["key"]]
    for container in CONTAINERS:
        ref = container.secret_ref("SUPPORTFLOW_DATABASE_URL")
        assert ref is not None
        url = urlsplit(generator_entries(DEV, "secretGenerator", ref["name"])[ref["key"]])
        assert url.scheme == "postgresql+asyncpg", container.id
        assert (url.hostname, url.port) == ("postgres", backend_port("postgres")), container.id
        assert url.username == pg_env["POSTGRES_USER"]["value"], container.id
        assert url.password == password, container.id
        assert url.path == "/" + pg_env["POSTGRES_DB"]["value"], container.id


def test_dev_overlay_provides_every_required_secret_key() -> None:
    generated = {
        g["name"]: generator_entries(DEV, "secretGenerator", g["name"]) for g in kustomization(DEV)["secretGenerator"]
    }
    refs = [n["secretKeyRef"] for n in walk(objects(DEV)) if isinstance(n, dict) and "secretKeyRef" in n]
    missing = {(r["name"], r["key"]) for r in refs if not r.get("optional") and r["key"] not in generated[r["name"]]}
    assert not missing, f"dev overlay does not generate {sorted(missing)}"


def test_production_scales_with_hpas_that_own_the_replica_count() -> None:
    k = kustomization(PRODUCTION)
    hpas = by_kind(objects(PRODUCTION), "HorizontalPodAutoscaler")
    deployments = {d["metadata"]["name"] for d in by_kind(BASE_DOCS, "Deployment")}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == deployments
    for hpa in hpas:
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] >= 2, "one replica may be down for a rollout or a drain"
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    removes = [
        p
        for p in k["patches"]
        if p["target"]["kind"] == "Deployment"
        and {"op": "remove", "path": "/spec/replicas"} in load(PRODUCTION / p["path"])[0]
    ]
    assert removes, "a Deployment's replicas would reset the HPA's count on every apply"


def test_readme_secret_command_creates_every_key_production_reads() -> None:
    """Production's Secret is created by hand from deploy/README.md: it must name every key."""
    docs = objects(PRODUCTION) + [
        op for p in kustomization(PRODUCTION).get("patches", []) for op in load(PRODUCTION / p["path"])[0]
    ]
    keys = {n["secretKeyRef"]["key"] for n in walk(docs) if isinstance(n, dict) and "secretKeyRef" in n}
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"--from-literal=([a-z0-9-]+)=", readme))
    assert keys <= documented, f"deploy/README.md does not create {sorted(keys - documented)}"


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=rel)
def test_overlay_builds_with_kustomize(overlay: Path) -> None:
    command = _kustomize()
    assert command is not None
    result = subprocess.run([*command, str(overlay)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in built}
    for node in walk(built):
        if isinstance(node, dict) and "configMapRef" in node:
            assert ("ConfigMap", node["configMapRef"]["name"]) in names, node
    new_name = next(i for i in kustomization(overlay)["images"] if i["name"] == "supportflow")["newName"]
    images = {c["image"] for d in built if d["kind"] in WORKLOAD_KINDS for c in pod_spec(d)["containers"]}
    assert any(i.startswith(new_name + ":") for i in images)
