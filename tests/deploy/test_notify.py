"""notify on Kubernetes: its configuration folder travels as a flat ConfigMap that notify reads as
the folder (built with deploy/README.md's own command from the shipped bpmn/notify), mounted where
the production overlay points SUPPORTFLOW_CONFIG_DIR and whole (so edits are picked up without a
restart); only notify may talk to mail relays and HTTPS receivers; the production build gives it
a mail relay and the organisation's configuration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.notify.adapters.config_files import ConfigHolder, read_config_dir
from tests.deploy.manifests import (
    BASE_DOCS,
    DEPLOY,
    PRODUCTION,
    ROOT,
    SERVERS,
    ServiceContainer,
    by_kind,
    cid,
    kustomization,
    load,
    pod_labels,
    pod_spec,
    selects,
)

NOTIFY_DIR = ROOT / "bpmn" / "notify"
COMPONENT = DEPLOY / "components" / "notify-config"
CONFIGMAP = "supportflow-notify-config"
#: What a ConfigMap key may be (Kubernetes' IsConfigMapKey) and how much a ConfigMap may hold.
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
CONFIGMAP_BYTES = 1024 * 1024
KUBECTL = shutil.which("kubectl")


def readme_command() -> str:
    """The shell command of deploy/README.md's "Notification configuration", without its `cd` line
    and the final `| kubectl apply -f -` (the test reads what would be applied)."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Notification configuration", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if not line.startswith("cd ")]
    command = "\n".join(lines)
    assert command.rstrip().endswith("| kubectl apply -f -"), command
    return command.rstrip().removesuffix("| kubectl apply -f -").rstrip().removesuffix("\\").rstrip()


def as_mounted(data: dict[str, str], volume: Path) -> Path:
    """Lay out a ConfigMap's data as the kubelet does: files in a timestamped folder, `..data`
    pointing at it, one link per key."""
    (volume / "..2026_03_02_09_00").mkdir(parents=True)
    for key, text in data.items():
        (volume / "..2026_03_02_09_00" / key).write_text(text, encoding="utf-8")
        (volume / key).symlink_to(f"..data/{key}")
    (volume / "..data").symlink_to("..2026_03_02_09_00")
    return volume


@pytest.mark.skipif(KUBECTL is None, reason="kubectl builds the ConfigMap")
def test_the_readme_command_turns_the_folder_into_a_configmap_notify_reads_as_the_folder(tmp_path: Path) -> None:
    built = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_command()],
        cwd=NOTIFY_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "no-cluster")},  # --dry-run=client needs none
    )
    assert built.returncode == 0, built.stderr
    configmap = yaml.safe_load(built.stdout)
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", CONFIGMAP)
    data: dict[str, str] = configmap["data"]
    assert all(CONFIGMAP_KEY.fullmatch(key) for key in data), sorted(data)
    assert sum(len(text.encode()) for text in data.values()) < CONFIGMAP_BYTES / 2, "room to grow below 1 MiB"

    volume = as_mounted(data, tmp_path / "volume")
    shipped = {path: content for path, content in read_config_dir(NOTIFY_DIR).items() if path != "README.md"}
    assert read_config_dir(volume) == shipped
    ConfigHolder(volume, {}, strict_env=False, poll_seconds=1).load_initial()


def test_the_component_mounts_the_whole_configmap_where_notify_reads_its_configuration() -> None:
    k = kustomization(COMPONENT)
    [patch] = k["patches"]
    assert patch["target"] == {"kind": "Deployment", "name": "notify"}
    ops = load(COMPONENT / patch["path"])[0]
    volume = next(op["value"] for op in ops if op["path"].endswith("/volumes/-"))
    mount = next(op["value"] for op in ops if op["path"].endswith("/volumeMounts/-"))
    env = next(op["value"] for op in ops if op["path"].endswith("/env/-"))
    assert volume["configMap"] == {"name": CONFIGMAP}, "whole, no items: every key of the folder"
    assert mount["name"] == volume["name"]
    assert "subPath" not in mount, "a subPath mount never sees an updated ConfigMap"
    assert mount["readOnly"] is True
    assert env == {"name": "SUPPORTFLOW_CONFIG_DIR", "value": mount["mountPath"]}
    assert "../../components/notify-config" in kustomization(PRODUCTION)["components"]


def _egress_ports(server: ServiceContainer) -> set[int]:
    return {
        port["port"]
        for policy in by_kind(BASE_DOCS, "NetworkPolicy")
        if "Egress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], pod_labels(server.workload))
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize("server", SERVERS, ids=cid)
def test_only_notify_may_reach_mail_relays_and_https_receivers(server: ServiceContainer) -> None:
    outside = {25, 587, 443} & _egress_ports(server)
    assert outside == ({25, 587, 443} if server.service == "notify" else set())


@pytest.mark.skipif(KUBECTL is None, reason="kubectl builds the overlay")
def test_production_gives_notify_a_mail_relay_and_the_organisations_configuration() -> None:
    assert KUBECTL is not None
    built = subprocess.run(
        [KUBECTL, "kustomize", str(PRODUCTION)], capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stderr
    [notify] = [
        d
        for d in yaml.safe_load_all(built.stdout)
        if d and (d["kind"], d["metadata"]["name"]) == ("Deployment", "notify")
    ]
    [container] = pod_spec(notify)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SUPPORTFLOW_CONFIG_DIR"] == "/etc/supportflow/notify"
    assert {"SUPPORTFLOW_SMTP_HOST", "SUPPORTFLOW_SMTP_PORT", "SUPPORTFLOW_MAIL_DOMAIN"} <= set(env)
    assert env["SUPPORTFLOW_SMTP_STARTTLS"] == "true", "credentials only over an encrypted connection"
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"a variable set twice: {names}"
    assert "replicas" not in notify["spec"], "its HPA owns the replica count"
