"""Every rendered NetworkPolicy held against the pods that must talk, and those that must not.

A small evaluator of NetworkPolicy semantics (networking.k8s.io/v1): a pod selected by a
policy of a type (Ingress/Egress) accepts only what some rule of those policies allows; peers
are podSelector (the policy's namespace), namespaceSelector, both together, or ipBlock; ports
by number or by the destination container's port name, none = every port. Pods are the
chart's own pod templates (Deployments, the StatefulSet, hook Jobs, the training Job inside
its ConfigMap, the backup CronJob, the `helm test` Pod), as rendered by the real helm.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy import check_chart as cc

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "hydra-check"


NAMESPACES = {
    cc.NAMESPACE: {"kubernetes.io/metadata.name": cc.NAMESPACE},
    "monitoring": {"kubernetes.io/metadata.name": "monitoring"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
    "ingress-nginx": {"kubernetes.io/metadata.name": "ingress-nginx"},
}


@dataclass
class Endpoint:
    """A pod (labels, namespace, named ports) or an address outside the cluster."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str | None = cc.NAMESPACE
    ports: dict[str, int] = field(default_factory=dict)
    ip: str = "10.244.0.10"


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if other.namespace is None:  # outside the cluster: only an ipBlock reaches it
        return False
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], NAMESPACES[other.namespace]):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or _matches(peer["podSelector"], other.labels)


def _port_matches(rule: dict[str, Any], port: int, target: Endpoint) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        wanted = p.get("port")
        if wanted is None or wanted == port or target.ports.get(str(wanted)) == port:
            return True
    return False


class Policies:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.items = [o for o in objects if o["kind"] == "NetworkPolicy"]

    def _side_allows(
        self, pod: Endpoint, kind: str, other: Endpoint, port: int, target: Endpoint
    ) -> bool:
        if pod.namespace != cc.NAMESPACE:
            return True  # not ours: no policy of the chart selects it
        selecting = [
            p for p in self.items
            if kind in p["spec"]["policyTypes"] and _matches(p["spec"]["podSelector"], pod.labels)
        ]  # fmt: skip
        if not selecting:
            return True
        key, peers = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peer_ok = not rule.get(peers) or any(
                    _peer_matches(peer, cc.NAMESPACE, other) for peer in rule[peers]
                )
                if peer_ok and _port_matches(rule, port, target):
                    return True
        return False

    def allows(self, src: Endpoint, dst: Endpoint, port: int) -> bool:
        """Egress of the source and ingress of the destination both let this connection by."""
        egress = self._side_allows(src, "Egress", dst, port, dst)
        ingress = dst.namespace is None or self._side_allows(dst, "Ingress", src, port, dst)
        return egress and ingress


def _pods(objects: list[dict[str, Any]]) -> dict[str, Endpoint]:
    """The chart's pods by component label."""
    templates: list[dict[str, Any]] = []
    for obj in objects:
        kind = obj["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            templates.append(obj["spec"]["template"])
        elif kind == "CronJob":
            templates.append(obj["spec"]["jobTemplate"]["spec"]["template"])
        elif kind == "Pod":
            templates.append(obj)
        for _, inner in cc.embedded_objects(obj):
            templates.append(inner["spec"]["template"])
    pods = {}
    for template in templates:
        labels = template["metadata"]["labels"]
        spec = template["spec"]
        ports = {
            p["name"]: p["containerPort"]
            for c in [*spec["containers"], *spec.get("initContainers", [])]
            for p in c.get("ports", [])
            if "name" in p
        }
        pods[labels["app.kubernetes.io/component"]] = Endpoint(
            labels["app.kubernetes.io/component"], labels, ports=ports
        )
    return pods


PROMETHEUS = Endpoint("prometheus", {"app.kubernetes.io/name": "prometheus"}, "monitoring")
GRAFANA = Endpoint("grafana", {"app.kubernetes.io/name": "grafana"}, "monitoring")
STRANGER = Endpoint("stranger", {"app": "something-else"})
KUBE_API = Endpoint("kube-apiserver", namespace=None, ip="10.96.0.1")
EXTERNAL_DB = Endpoint("mysql.example.org", namespace=None, ip="192.0.2.10")


@pytest.fixture(scope="module")
def hall_b() -> tuple[Policies, dict[str, Endpoint]]:
    objects = cc.helm_template(cc.CHART / "values-hall-b.yaml")
    return Policies(objects), _pods(objects)


@pytest.fixture(scope="module")
def small() -> tuple[Policies, dict[str, Endpoint]]:
    objects = cc.helm_template(cc.CHART / "values-small.yaml")
    return Policies(objects), _pods(objects)


def test_every_pod_of_the_chart_is_under_a_policy(
    hall_b: tuple[Policies, dict[str, Endpoint]], small: tuple[Policies, dict[str, Endpoint]]
) -> None:
    for policies, pods in (hall_b, small):
        for pod in pods.values():
            types = {
                t
                for p in policies.items
                if _matches(p["spec"]["podSelector"], pod.labels)
                for t in p["spec"]["policyTypes"]
            }
            assert types == {"Ingress", "Egress"}, pod.name
    assert {"trainer", "tfserving", "test", "migrations"} <= set(hall_b[1])
    assert {"mariadb", "mariadb-backup"} <= set(small[1])


def test_pipeline_neighbours_talk(hall_b: tuple[Policies, dict[str, Endpoint]]) -> None:
    policies, pods = hall_b
    allowed = [
        ("feeder", "balancer", 50051),
        ("predictor", "balancer", 50051),
        ("predictor", "tfserving", 8500),
        ("predictor", "keeper", 50052),
        ("api", "keeper", 50052),  # WatchCommits: the keeper's commit notices push the Run page
        ("api", "feeder", 9101),  # the Status page reads the pipeline's metrics
        ("api", "balancer", 9102),
        ("api", "predictor", 9103),
        ("test", "keeper", 9104),  # helm test
    ]
    for src, dst, port in allowed:
        assert policies.allows(pods[src], pods[dst], port), f"{src} -> {dst}:{port} refused"


def test_database_clients_reach_the_external_database(
    hall_b: tuple[Policies, dict[str, Endpoint]],
) -> None:
    policies, pods = hall_b
    # feeder: plot types and its ledger; predictor: its model catalogue; tfserving: the
    # model-config sidecar; trainer: training sets and models.
    for client in ("feeder", "predictor", "keeper", "api", "trainer", "migrations", "tfserving"):
        assert policies.allows(pods[client], EXTERNAL_DB, 3306), client
    assert not policies.allows(pods["balancer"], EXTERNAL_DB, 3306)
    assert not policies.allows(pods["test"], EXTERNAL_DB, 3306)
    assert not policies.allows(pods["keeper"], EXTERNAL_DB, 5432)  # only the database port


def test_only_the_api_reaches_the_kubernetes_api(
    hall_b: tuple[Policies, dict[str, Endpoint]],
) -> None:
    policies, pods = hall_b
    assert policies.allows(pods["api"], KUBE_API, 443)
    assert policies.allows(pods["api"], KUBE_API, 6443)
    for other in ("feeder", "balancer", "predictor", "keeper", "trainer", "tfserving", "test"):
        assert not policies.allows(pods[other], KUBE_API, 443), other


def test_prometheus_scrapes_every_metrics_port(
    hall_b: tuple[Policies, dict[str, Endpoint]],
) -> None:
    policies, pods = hall_b
    for component, port in [
        ("feeder", 9101), ("balancer", 9102), ("predictor", 9103), ("keeper", 9104),
        ("api", 8080), ("tfserving", 8501),
    ]:  # fmt: skip
        assert policies.allows(PROMETHEUS, pods[component], port), component
    # ... and nothing else of theirs.
    assert not policies.allows(PROMETHEUS, pods["balancer"], 50051)
    assert not policies.allows(PROMETHEUS, pods["tfserving"], 8500)


def test_everything_else_is_refused(hall_b: tuple[Policies, dict[str, Endpoint]]) -> None:
    policies, pods = hall_b
    refused = [
        ("feeder", "keeper", 50052),
        ("feeder", "tfserving", 8500),
        ("balancer", "predictor", 9103),
        ("keeper", "balancer", 50051),
        ("trainer", "balancer", 50051),
        ("trainer", "tfserving", 8500),
        ("tfserving", "balancer", 50051),
        ("api", "keeper", 9104),  # the keeper's metrics: Prometheus only
        ("api", "tfserving", 8500),
        ("test", "balancer", 50051),
        ("predictor", "feeder", 9101),
    ]
    for src, dst, port in refused:
        assert not policies.allows(pods[src], pods[dst], port), f"{src} -> {dst}:{port} allowed"
    for dst, port in (("balancer", 50051), ("keeper", 50052), ("tfserving", 8500), ("api", 8080)):
        assert not policies.allows(STRANGER, pods[dst], port), dst
    # Nothing comes into the training Job or the test pod.
    assert not policies.allows(pods["api"], pods["trainer"], 8080)
    assert not policies.allows(PROMETHEUS, pods["trainer"], 9101)


def test_bundled_mariadb_admits_only_its_clients(
    small: tuple[Policies, dict[str, Endpoint]],
) -> None:
    policies, pods = small
    db = pods["mariadb"]
    for client in (
        "feeder", "predictor", "keeper", "api", "trainer", "migrations", "tfserving",
        "mariadb-backup",
    ):  # fmt: skip
        assert policies.allows(pods[client], db, 3306), client
    assert policies.allows(GRAFANA, db, 3306)  # the weights dashboard
    for other in (pods["balancer"], pods["test"], STRANGER, PROMETHEUS):
        assert not policies.allows(other, db, 3306), other.name
    # With the bundled database, clients no longer reach any outside address on 3306.
    assert not policies.allows(pods["keeper"], EXTERNAL_DB, 3306)


def test_training_job_mounts_the_model_volume(
    hall_b: tuple[Policies, dict[str, Endpoint]],
) -> None:
    objects = cc.helm_template(cc.CHART / "values-hall-b.yaml")
    (job,) = [j for o in objects for _, j in cc.embedded_objects(o)]
    spec = job["spec"]["template"]["spec"]
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]
    }
    assert claims["models"] == f"{RELEASE}-models"
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert not mounts["models"].get("readOnly")
    # And its pod is the one the trainer policy selects (checked as an Endpoint above).
    assert hall_b[1]["trainer"].labels["app.kubernetes.io/component"] == "trainer"


def test_the_evaluator_sees_a_missing_rule(hall_b: tuple[Policies, dict[str, Endpoint]]) -> None:
    import copy

    policies, pods = hall_b
    broken = Policies(copy.deepcopy(policies.items))
    tfserving = next(p for p in broken.items if p["metadata"]["name"] == f"{RELEASE}-tfserving")
    tfserving["spec"]["ingress"] = tfserving["spec"]["ingress"][1:]  # drop predictor -> grpc
    assert policies.allows(pods["predictor"], pods["tfserving"], 8500)
    assert not broken.allows(pods["predictor"], pods["tfserving"], 8500)
