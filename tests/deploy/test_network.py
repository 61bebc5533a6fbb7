"""Services, disruption budgets and network policies select real pods and ports: a Service whose
selector or targetPort matches nothing, a policy that selects no pod, a default-deny that leaves a
Service unreachable or cuts a service off from NATS or PostgreSQL."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.deploy.manifests import (
    ALL_DOCS,
    BASE,
    BASE_DOCS,
    CONTAINERS,
    SERVERS,
    SHARED_CONFIG,
    WORKLOADS,
    Doc,
    ServiceContainer,
    backend_port,
    by_kind,
    cid,
    container_ports,
    generator_entries,
    name_of,
    numeric_port,
    obj,
    pod_labels,
    pods_selected_by,
    selects,
)


@pytest.mark.parametrize("service", by_kind(ALL_DOCS, "Service"), ids=name_of)
def test_services_route_to_declared_ports(service: Doc) -> None:
    pods = pods_selected_by({"matchLabels": service["spec"]["selector"]})
    assert pods, f"{name_of(service)} selects no pod"
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        for pod in pods:
            assert target in container_ports(pod), f"{name_of(service)}: {name_of(pod)} declares no port {target}"
    servers = [c for c in SERVERS if c.workload in pods]
    if servers:  # a supportflow gRPC service
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
        [port] = service["spec"]["ports"]
        assert port["appProtocol"] == "grpc"
        assert port["port"] == container_ports(servers[0].workload)["grpc"]


@pytest.mark.parametrize("pdb", by_kind(ALL_DOCS, "PodDisruptionBudget"), ids=name_of)
def test_disruption_budgets_select_a_deployment_and_allow_drains(pdb: Doc) -> None:
    assert any(w["kind"] == "Deployment" for w in pods_selected_by(pdb["spec"]["selector"]))
    # minAvailable: 1 with one replica (dev) would block every node drain.
    assert "maxUnavailable" in pdb["spec"]
    assert "minAvailable" not in pdb["spec"]


POLICIES = by_kind(ALL_DOCS, "NetworkPolicy")


@pytest.mark.parametrize("policy", POLICIES, ids=name_of)
def test_network_policies_select_existing_pods_and_ports(policy: Doc) -> None:
    selected = pods_selected_by(policy["spec"]["podSelector"])
    assert selected, f"{name_of(policy)} selects no pod"
    for rule in policy["spec"].get("ingress", []):
        for peer in rule.get("from", []):
            if "podSelector" in peer and "namespaceSelector" not in peer:  # a peer in this namespace
                assert pods_selected_by(peer["podSelector"]), f"{name_of(policy)}: {peer} selects no pod"
        for port in rule.get("ports", []):
            for pod in selected:
                assert port["port"] in container_ports(pod), f"{name_of(policy)}: {name_of(pod)} has no {port}"


def _policies_for(pod: Doc, policy_type: str) -> list[Doc]:
    return [
        p
        for p in POLICIES
        if policy_type in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod_labels(pod))
    ]


@pytest.mark.parametrize("workload", WORKLOADS, ids=name_of)
def test_every_pod_is_under_the_default_deny(workload: Doc) -> None:
    deny = obj(BASE_DOCS, "NetworkPolicy", "supportflow-default-deny")["spec"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    assert selects(deny["podSelector"], pod_labels(workload))


@pytest.mark.parametrize("service", by_kind(ALL_DOCS, "Service"), ids=name_of)
def test_every_service_port_is_open_to_someone(service: Doc) -> None:
    for pod in pods_selected_by({"matchLabels": service["spec"]["selector"]}):
        allowed = {
            numeric_port(pod, port["port"])
            for policy in _policies_for(pod, "Ingress")
            for rule in policy["spec"].get("ingress", [])
            for port in rule.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = numeric_port(pod, port.get("targetPort", port["port"]))
            assert target in allowed, f"{name_of(service)}: no policy lets anyone reach {name_of(pod)}:{target}"


def _egress_ports(pod: Doc) -> set[tuple[str, int]]:
    ports: set[tuple[str, int]] = set()
    for policy in _policies_for(pod, "Egress"):
        for rule in policy["spec"].get("egress", []):
            ports |= {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}
    return ports


@pytest.mark.parametrize("container", CONTAINERS, ids=cid)
def test_services_may_reach_dns_and_their_backends(container: ServiceContainer) -> None:
    allowed = _egress_ports(container.workload)
    needed = {("UDP", 53), ("TCP", backend_port("postgres"))}
    if not container.is_migration:
        needed.add(("TCP", backend_port("nats")))
    assert needed <= allowed, f"{container.id}: egress lacks {needed - allowed}"


@pytest.mark.parametrize(("backend", "clients"), [("nats", [False]), ("postgres", [False, True])])
def test_backends_admit_the_services(backend: str, clients: list[bool]) -> None:
    service = obj(ALL_DOCS, "Service", backend)
    [pod] = pods_selected_by({"matchLabels": service["spec"]["selector"]})
    port = backend_port(backend)
    for client in (c for c in CONTAINERS if c.is_migration in clients):
        assert any(
            port in {p["port"] for p in rule.get("ports", [])}
            and any(
                "podSelector" in peer and selects(peer["podSelector"], pod_labels(client.workload))
                for peer in rule.get("from", [])
            )
            for policy in _policies_for(pod, "Ingress")
            for rule in policy["spec"].get("ingress", [])
        ), f"{client.id} may not reach {backend}:{port}"


def test_default_nats_url_is_the_components_service() -> None:
    url = urlsplit(generator_entries(BASE, "configMapGenerator", SHARED_CONFIG)["SUPPORTFLOW_NATS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("nats", "nats", backend_port("nats"))
