"""What the chart renders, per hall: security, scaling, storage, networking, observability.

Rendered with the real helm (deploy/check_chart.py); no cluster runs here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import check_chart as cc

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "hydra-check"


Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def renders() -> dict[str, Objects]:
    all_renders: dict[str, Objects] = cc.all_renders()
    return all_renders


def find(objects: Objects, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_specs(objects: Objects) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template: workloads, hook Jobs and the training Job inside its ConfigMap."""
    out = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append(
                (f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"])
            )
        for where, inner in cc.embedded_objects(obj):
            out.append((where, inner["spec"]["template"]["spec"]))
    return out


@pytest.mark.parametrize(
    "label", ["(defaults)", "values-hall-b.yaml", "values-epic.yaml", "values-small.yaml"]
)
def test_every_pod_runs_locked_down(renders: dict[str, Objects], label: str) -> None:
    specs = pod_specs(renders[label])
    assert len(specs) >= 8
    for where, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            # A read-only root needs somewhere to write temporary files.
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, where


def test_hydra_pods_run_as_user_10001(renders: dict[str, Objects]) -> None:
    for where, spec in pod_specs(renders["values-hall-b.yaml"]):
        assert spec["securityContext"]["runAsUser"] == 10001, where


def test_epic_scales_predictors_with_keda(renders: dict[str, Objects]) -> None:
    objects = renders["values-epic.yaml"]
    scaled = one(objects, "ScaledObject", f"{RELEASE}-predictor")
    values = yaml.safe_load((cc.CHART / "values-epic.yaml").read_text())["autoscaling"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == f"{RELEASE}-predictor"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        values["minReplicas"],
        values["maxReplicas"],
    )
    assert spec["pollingInterval"] == values["keda"]["pollingInterval"]
    assert spec["cooldownPeriod"] == values["keda"]["cooldownPeriod"]
    backlog, wait = spec["triggers"]
    assert backlog["type"] == wait["type"] == "prometheus"
    assert backlog["metricType"] == "AverageValue" and wait["metricType"] == "Value"
    assert backlog["metadata"]["threshold"] == str(values["targetQueueDepth"])
    # The backlog counts what the feeders hold, not only the (window-capped) queue.
    assert backlog["metadata"]["query"] == (
        f'sum(hydra_balancer_queue_depth{{namespace="{cc.NAMESPACE}",'
        f'service="{RELEASE}-balancer"}}) + sum(hydra_feeder_orders_pending{{namespace='
        f'"{cc.NAMESPACE}",service="{RELEASE}-feeder"}} or vector(0))'
    )
    assert "hydra_balancer_queue_wait_seconds_bucket" in wait["metadata"]["query"]
    assert wait["metadata"]["threshold"] == "5"
    # Prometheus down: KEDA runs the fallback, not a silent minimum.
    assert spec["fallback"] == values["keda"]["fallback"] == {"failureThreshold": 3, "replicas": 10}
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    assert not find(objects, "HorizontalPodAutoscaler")
    # KEDA owns the replica count: the Deployment must not fight it on every upgrade.
    assert "replicas" not in one(objects, "Deployment", f"{RELEASE}-predictor")["spec"]


def test_hpa_on_external_metric_when_keda_is_off() -> None:
    objects = cc.helm_template(
        cc.CHART / "values-epic.yaml",
        ["autoscaling.keda.enabled=false", "autoscaling.hpa.enabled=true"],
    )
    assert not find(objects, "ScaledObject")
    hpa = one(objects, "HorizontalPodAutoscaler", f"{RELEASE}-predictor")
    assert hpa["apiVersion"] == "autoscaling/v2"
    backlog, wait = hpa["spec"]["metrics"]
    assert backlog["type"] == wait["type"] == "External"
    assert backlog["external"]["metric"]["name"] == "hydra:backlog_orders"
    assert backlog["external"]["metric"]["selector"] == {"matchLabels": {"namespace": cc.NAMESPACE}}
    assert backlog["external"]["target"] == {"type": "AverageValue", "averageValue": "500"}
    assert wait["external"]["metric"]["name"] == "hydra:queue_wait_p90_seconds"
    assert wait["external"]["target"] == {"type": "Value", "value": "5"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 40)
    # The HPA's behaviour is passed through from values.
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    raised = cc.helm_template(
        cc.CHART / "values-hall-d.yaml",
        ["autoscaling.hpa.behavior.scaleUp.stabilizationWindowSeconds=30"],
    )
    behavior = one(raised, "HorizontalPodAutoscaler", f"{RELEASE}-predictor")["spec"]["behavior"]
    assert behavior["scaleUp"] == {"stabilizationWindowSeconds": 30}
    cc.validate_objects(objects)


def test_fixed_replicas_without_an_autoscaler(renders: dict[str, Objects]) -> None:
    objects = renders["(defaults)"]
    assert not find(objects, "ScaledObject") and not find(objects, "HorizontalPodAutoscaler")
    assert one(objects, "Deployment", f"{RELEASE}-predictor")["spec"]["replicas"] == 2


def test_bundled_mariadb_only_in_the_small_hall(renders: dict[str, Objects]) -> None:
    for label, objects in renders.items():
        statefulsets = find(objects, "StatefulSet")
        if label == "values-small.yaml":
            assert [s["metadata"]["name"] for s in statefulsets] == [f"{RELEASE}-mariadb"]
        else:
            assert statefulsets == [], label
    small = renders["values-small.yaml"]
    secret = one(small, "Secret", f"{RELEASE}-mariadb")
    url = secret["stringData"]["HYDRA_DATABASE_URL"]
    assert re.fullmatch(
        rf"mysql\+asyncmy://hydra:[A-Za-z0-9]{{32}}@{RELEASE}-mariadb:3306/hydra\?charset=utf8mb4",
        url,
    )
    keeper = one(small, "Deployment", f"{RELEASE}-keeper")
    env = keeper["spec"]["template"]["spec"]["containers"][0]["env"]
    db = next(e for e in env if e["name"] == "HYDRA_DATABASE_URL")
    assert db["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-mariadb",
        "key": "HYDRA_DATABASE_URL",
    }
    # The bundled database is part of the release: migrate after install, before upgrades.
    job = one(small, "Job", f"{RELEASE}-migrations")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_external_database_is_migrated_before_install(renders: dict[str, Objects]) -> None:
    job = one(renders["values-hall-b.yaml"], "Job", f"{RELEASE}-migrations")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["hydra"]
    assert container["args"][:2] == ["db", "upgrade"]
    assert container["image"].endswith("hydra-api:0.1.0")
    ref = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "hydra-hallb-db", "key": "HYDRA_DATABASE_URL"}
    # A hook runs before the chart's ConfigMap exists: it must not depend on it.
    assert "envFrom" not in container


def test_missing_database_secret_is_refused() -> None:
    with pytest.raises(cc.CheckError, match=r"database\.existingSecret is required"):
        cc.helm_template(cc.CHART / "values-small.yaml", ["mariadb.enabled=false"])


def test_network_policies_allow_only_neighbours(renders: dict[str, Objects]) -> None:
    objects = renders["(defaults)"]
    policies = {p["metadata"]["name"]: p for p in find(objects, "NetworkPolicy")}
    for deployment in find(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        assert name in policies, f"no NetworkPolicy selects {name}"
        assert (
            policies[name]["spec"]["podSelector"]["matchLabels"]
            == (deployment["spec"]["selector"]["matchLabels"])
        )
        assert policies[name]["spec"]["policyTypes"] == ["Ingress", "Egress"]

    def egress_components(name: str) -> set[str]:
        return {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in policies[f"{RELEASE}-{name}"]["spec"]["egress"]
            for peer in rule["to"]
            if "podSelector" in peer and "namespaceSelector" not in peer
        }

    def ingress_components(name: str) -> set[str]:
        return {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in policies[f"{RELEASE}-{name}"]["spec"]["ingress"]
            for peer in rule["from"]
            if "podSelector" in peer and "namespaceSelector" not in peer
        }

    assert egress_components("feeder") == {"balancer"}
    assert egress_components("predictor") == {"balancer", "keeper", "tfserving"}
    assert egress_components("keeper") == set()
    # The API reads the pipeline's /metrics for the Status page, and the keeper's commit
    # notices (WatchCommits) for the Run page; nothing else of it.
    assert egress_components("api") == {"feeder", "balancer", "predictor", "keeper"}
    assert ingress_components("balancer") == {"feeder", "predictor", "api"}
    values = yaml.safe_load((cc.CHART / "values.yaml").read_text())
    for rule in policies[f"{RELEASE}-balancer"]["spec"]["ingress"]:
        sources = {
            p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            for p in rule["from"]
        }
        if "api" in sources:
            assert [p["port"] for p in rule["ports"]] == [values["balancer"]["metricsPort"]]
    api = one(objects, "Deployment", f"{RELEASE}-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HYDRA_STATUS_TARGETS"] == ",".join(
        f"{c}=http://{RELEASE}-{c}:{values[c]['metricsPort']}/metrics"
        for c in ("feeder", "balancer", "predictor")
    )
    # The keeper takes reports from predictors, the API watches its commits (its gRPC port
    # only), and `helm test` reads its metrics port.
    assert ingress_components("keeper") == {"predictor", "api", "test"}
    for rule in policies[f"{RELEASE}-keeper"]["spec"]["ingress"]:
        sources = {
            p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            for p in rule.get("from", [])
        }
        if "api" in sources:
            assert [p["port"] for p in rule["ports"]] == [values["keeper"]["port"]]
    assert ingress_components("tfserving") == {"predictor"}
    # With the bundled MariaDB, only database clients reach it.
    small = {p["metadata"]["name"]: p for p in find(renders["values-small.yaml"], "NetworkPolicy")}
    clients = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in small[f"{RELEASE}-mariadb"]["spec"]["ingress"][0]["from"]
        if "namespaceSelector" not in peer
    }
    assert clients == {
        "feeder", "predictor", "keeper", "api", "trainer", "migrations", "tfserving",
        "mariadb-backup",
    }  # fmt: skip


def test_checksum_annotation_follows_the_configuration() -> None:
    def checksums(sets: list[str]) -> dict[str, str]:
        objects = cc.helm_template(None, sets)
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"][
                "checksum/config"
            ]
            for d in find(objects, "Deployment")
            if not d["metadata"]["name"].endswith("-tfserving")
        }

    base = checksums([])
    assert len(base) == 5  # every Deployment that reads the shared env ConfigMap
    assert checksums([]) == base  # deterministic: an unchanged upgrade restarts nothing
    changed = checksums(["feeder.rescanSeconds=7"])
    assert all(changed[name] != base[name] for name in base)


def test_tf_serving_rolls_only_on_what_it_reads() -> None:
    def annotations(sets: list[str]) -> dict[str, str]:
        objects = cc.helm_template(cc.CHART / "values-hall-b.yaml", sets)
        deployment = one(objects, "Deployment", f"{RELEASE}-tfserving")
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    base = annotations([])
    assert "checksum/config" not in base  # it does not mount the shared env ConfigMap
    assert annotations(["feeder.rescanSeconds=7", "predictor.credits=8"]) == base
    assert annotations(["tfserving.batching.batchTimeoutMicros=500"]) != base


def test_kubernetes_waits_longer_than_the_services_grace() -> None:
    def grace(sets: list[str]) -> dict[str, int]:
        return {
            d["metadata"]["name"].removeprefix(f"{RELEASE}-"): d["spec"]["template"]["spec"].get(
                "terminationGracePeriodSeconds"
            )
            for d in find(cc.helm_template(None, sets), "Deployment")
            if not d["metadata"]["name"].endswith("-tfserving")
        }

    hydra = {"api", "balancer", "feeder", "keeper", "predictor"}
    # The services' default grace is 10 s; Kubernetes gets 20 s more.
    assert grace([]) == dict.fromkeys(hydra, 30)
    # Raising it for every service, or for one, moves Kubernetes' deadline with it.
    assert grace(["extraEnv.HYDRA_GRACE_SECONDS=45"]) == dict.fromkeys(hydra, 65)
    raised = grace(["extraEnv.HYDRA_GRACE_SECONDS=45", "keeper.env.HYDRA_GRACE_SECONDS=2.5"])
    assert raised == {**dict.fromkeys(hydra, 65), "keeper": 23}


def test_services_find_each_other_by_service_dns(renders: dict[str, Objects]) -> None:
    objects = renders["(defaults)"]
    env = one(objects, "ConfigMap", f"{RELEASE}-env")["data"]
    assert env["HYDRA_BALANCER_ADDRESS"] == f"{RELEASE}-balancer:50051"
    assert env["HYDRA_KEEPER_ADDRESS"] == f"{RELEASE}-keeper:50052"
    assert env["HYDRA_MODEL_SERVER_ADDRESS"] == f"dns:///{RELEASE}-tfserving-headless:8500"
    headless = one(objects, "Service", f"{RELEASE}-tfserving-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in headless["spec"]["ports"]} == {8500}
    assert {p["port"] for p in one(objects, "Service", f"{RELEASE}-balancer")["spec"]["ports"]} >= {
        50051
    }
    assert {p["port"] for p in one(objects, "Service", f"{RELEASE}-keeper")["spec"]["ports"]} >= {
        50052
    }
    # Every setting the chart sets is one docs/contracts.md names.
    contracts = (ROOT / "docs" / "contracts.md").read_text()
    unknown = [key for key in env if f"`{key}`" not in contracts]
    assert unknown == []


def test_tf_serving_on_gpu_nodes_with_model_config_and_batching(
    renders: dict[str, Objects],
) -> None:
    objects = renders["values-hall-b.yaml"]
    deployment = one(objects, "Deployment", f"{RELEASE}-tfserving")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"].startswith("tensorflow/serving:") and container["image"].endswith(
        "-gpu"
    )
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    # One GPU per pod: the old pod frees it before the new one starts.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    args = container["args"]
    for flag in (
        "--model_config_file=/models/models.config",
        "--model_config_file_poll_wait_seconds=30",
        "--enable_batching=true",
        "--batching_parameters_file=/etc/tfserving/batching.config",
        "--monitoring_config_file=/etc/tfserving/monitoring.config",
    ):
        assert flag in args
    config = one(objects, "ConfigMap", f"{RELEASE}-tfserving")["data"]
    assert "models.config" not in config  # written from the database, not by helm
    assert "max_batch_size { value: 64 }" in config["batching.config"]
    assert "prometheus_config" in config["monitoring.config"]
    assert (
        one(renders["values-epic.yaml"], "Deployment", f"{RELEASE}-tfserving")["spec"]["replicas"]
        == 4
    )


HALLS = ["values-hall-b.yaml", "values-hall-d.yaml", "values-epic.yaml", "values-small.yaml"]


@pytest.mark.parametrize("label", HALLS)
def test_tf_serving_is_fed_from_the_database(renders: dict[str, Objects], label: str) -> None:
    objects = renders[label]
    spec = one(objects, "Deployment", f"{RELEASE}-tfserving")["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    assert server["image"].startswith("tensorflow/serving:")
    assert "--model_config_file=/models/models.config" in server["args"]
    assert any(a.startswith("--model_config_file_poll_wait_seconds=") for a in server["args"])
    assert {m["name"]: m.get("readOnly") for m in server["volumeMounts"]}["models"] is True
    # The model-config sidecar: a native sidecar that starts first and writes the list.
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "model-config" and sidecar["restartPolicy"] == "Always"
    assert sidecar["command"] == ["hydra"] and sidecar["args"] == ["model-config", "watch"]
    assert sidecar["image"].rsplit("/", 1)[-1] == "hydra-api:0.1.0"  # no TensorFlow inside
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["HYDRA_MODEL_CONFIG_FILE"]["value"] == "/models/models.config"
    assert env["HYDRA_MODEL_CONFIG_POLL_SECONDS"]["value"] == "10"
    assert "secretKeyRef" in env["HYDRA_DATABASE_URL"]["valueFrom"]
    assert sidecar["startupProbe"]["exec"]["command"] == ["test", "-f", "/models/models.config"]
    assert {m["name"]: m.get("readOnly") for m in sidecar["volumeMounts"]}["models"] is None
    # No plot type is listed anywhere in the hall's values.
    values = yaml.safe_load((cc.CHART / label).read_text())
    assert "models" not in values.get("tfserving", {})
    assert "versionPolicy" not in values.get("tfserving", {})


@pytest.mark.parametrize("label", HALLS)
@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["balancer.replicas=2"], "balancer.replicas"),
        (["feeder.replicas=2"], "feeder.replicas"),
        (["keeper.replicas=2"], "keeper.replicas"),
        (["predictor.maxBatch=64", "tfserving.batching.maxBatchSize=16"], "maxBatch"),
        (["autoscaling.keda.enabled=true", "autoscaling.hpa.enabled=true"], "both true"),
    ],
)
def test_impossible_settings_are_refused(label: str, sets: list[str], message: str) -> None:
    with pytest.raises(cc.CheckError, match=message):
        cc.helm_template(cc.CHART / label, sets)


def test_template_guards_hold_without_the_schema() -> None:
    """The template `fail`s hold on their own (--skip-schema-validation skips the schema)."""
    helm = cc.ensure_tools()["helm"]
    for sets, message in [
        (["balancer.replicas=2"], "the queue lives in one balancer"),
        (["feeder.replicas=3"], "send every image twice"),
        (["keeper.replicas=2"], "two would each see half"),
        (["predictor.maxBatch=64", "tfserving.batching.maxBatchSize=16"], "INVALID_ARGUMENT"),
    ]:
        args = [a for s in sets for a in ("--set", s)]
        proc = cc._run(
            [helm, "template", RELEASE, cc.CHART, "--skip-schema-validation",
             "-f", cc.CHART / "values-hall-d.yaml", *args]
        )  # fmt: skip
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_hall_d_batches_fit_tf_serving(renders: dict[str, Objects]) -> None:
    objects = renders["values-hall-d.yaml"]
    env = one(objects, "ConfigMap", f"{RELEASE}-env")["data"]
    config = one(objects, "ConfigMap", f"{RELEASE}-tfserving")["data"]["batching.config"]
    size = int(re.search(r"max_batch_size \{ value: (\d+) \}", config).group(1))  # type: ignore[union-attr]
    assert int(env["HYDRA_MAX_BATCH"]) <= size


def test_small_hall_serves_with_tf_serving_on_cpu(renders: dict[str, Objects]) -> None:
    objects = renders["values-small.yaml"]
    deployment = one(objects, "Deployment", f"{RELEASE}-tfserving")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "tensorflow/serving:2.21.0"
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert "nodeSelector" not in spec
    assert "strategy" not in deployment["spec"]  # no GPU: a rolling update is fine
    job = yaml.safe_load(one(objects, "ConfigMap", f"{RELEASE}-training-job")["data"]["job.yaml"])
    trainer = job["spec"]["template"]["spec"]["containers"][0]
    assert trainer["image"] == "hydra-trainer:0.1.0"  # the CPU variant
    assert (
        "limits" not in trainer["resources"]
        or "nvidia.com/gpu" not in trainer["resources"]["limits"]
    )


def test_a_fresh_install_can_become_ready(renders: dict[str, Objects]) -> None:
    """With an empty volume, nothing in the pod waits for a model: TF Serving starts once the
    sidecar wrote a (possibly empty) list, and becomes ready when its REST port opens."""
    spec = one(renders["values-hall-b.yaml"], "Deployment", f"{RELEASE}-tfserving")["spec"][
        "template"
    ]["spec"]
    server = spec["containers"][0]
    assert server["readinessProbe"] == {"tcpSocket": {"port": "rest"}, "periodSeconds": 10}
    assert [c["name"] for c in spec["initContainers"]] == ["model-config"]


def test_probes(renders: dict[str, Objects]) -> None:
    objects = renders["(defaults)"]

    def container(component: str) -> dict[str, Any]:
        deployment = one(objects, "Deployment", f"{RELEASE}-{component}")
        first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
        return first

    assert container("balancer")["readinessProbe"]["grpc"] == {"port": 50051}
    assert container("keeper")["readinessProbe"]["grpc"] == {"port": 50052}
    assert container("api")["readinessProbe"]["httpGet"] == {"path": "/api/health", "port": "http"}
    # Liveness: the heartbeat of each service's event loop (hydra_common.metrics /livez).
    for component in ("feeder", "balancer", "predictor", "keeper"):
        probe = container(component)["livenessProbe"]["httpGet"]
        assert probe == {"path": "/livez", "port": "metrics"}
    # The API's liveness does not depend on the database (its readiness does).
    assert container("api")["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "http"}
    # tensorflow_model_server has no grpc.health.v1 service: a TCP probe, not a gRPC one.
    assert container("tfserving")["livenessProbe"]["tcpSocket"] == {"port": "grpc"}


def test_api_may_only_run_training_jobs_in_its_namespace(renders: dict[str, Objects]) -> None:
    objects = renders["values-hall-b.yaml"]
    assert not find(objects, "ClusterRole") and not find(objects, "ClusterRoleBinding")
    role = one(objects, "Role", f"{RELEASE}-api")
    rules = {
        (g, r): sorted(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert rules == {
        ("batch", "jobs"): ["create", "delete", "get", "list", "watch"],
        ("", "pods"): ["get", "list", "watch"],
        ("", "pods/log"): ["get"],
    }
    binding = one(objects, "RoleBinding", f"{RELEASE}-api")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-api", "namespace": cc.NAMESPACE}
    ]
    # Only the API's pods get a token.
    for deployment in find(objects, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        wants_token = deployment["metadata"]["name"] == f"{RELEASE}-api"
        assert spec["automountServiceAccountToken"] is wants_token


def test_training_job_template(renders: dict[str, Objects]) -> None:
    objects = renders["values-hall-b.yaml"]
    configmap = one(objects, "ConfigMap", f"{RELEASE}-training-job")
    job = yaml.safe_load(configmap["data"]["job.yaml"])
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "registry.example.org/hydra/hydra-trainer:0.1.0-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert job["spec"]["activeDeadlineSeconds"] == 86400 and job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["generateName"] == f"{RELEASE}-train-"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert "readOnly" not in mounts["models"] and mounts["storage"]["readOnly"] is True
    api = one(objects, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in api["containers"][0]["env"]}
    assert env["HYDRA_TRAINING_JOB_TEMPLATE"]["value"] == "/etc/hydra/training/job.yaml"
    assert env["HYDRA_TRAINING_BACKEND"]["value"] == "kubernetes"
    # The template is the one source: no second copy of its settings in the API's env.
    assert "HYDRA_TRAINING_NODE_SELECTOR" not in env and "HYDRA_TRAINING_IMAGE" not in env
    assert any(
        v.get("configMap", {}).get("name") == f"{RELEASE}-training-job" for v in api["volumes"]
    )


def test_storage_mounts(renders: dict[str, Objects]) -> None:
    objects = renders["values-hall-b.yaml"]

    def mounts(component: str) -> dict[str, dict[str, Any]]:
        spec = one(objects, "Deployment", f"{RELEASE}-{component}")["spec"]["template"]["spec"]
        return {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}

    assert not mounts("keeper")["/var/lib/hydra/storage"].get("readOnly")
    assert mounts("api")["/var/lib/hydra/storage"]["readOnly"] is True
    assert mounts("tfserving")["/models"]["readOnly"] is True
    assert not mounts("feeder")["/data/input"].get("readOnly")
    feeder = one(objects, "Deployment", f"{RELEASE}-feeder")["spec"]["template"]["spec"]
    nfs = next(v for v in feeder["volumes"] if v["name"] == "input")["nfs"]
    assert nfs == {"server": "nfs.example.org", "path": "/export/clas12/mon12"}
    claims = {c["metadata"]["name"]: c for c in find(objects, "PersistentVolumeClaim")}
    assert (
        claims[f"{RELEASE}-storage"]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    )
    assert claims[f"{RELEASE}-models"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_long_release_names_stay_valid_dns_labels() -> None:
    helm = cc.ensure_tools()["helm"]
    release = "h" + "x" * 52
    proc = cc._run(
        [
            helm,
            "template",
            release,
            cc.CHART,
            "-f",
            cc.CHART / "values-small.yaml",
            "--kube-version",
            cc.KUBE_VERSION,
        ]
    )
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    names = [o["metadata"]["name"] for o in objects]
    assert all(len(n) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) for n in names)
    assert len(set((o["kind"], o["metadata"]["name"]) for o in objects)) == len(objects)
    cc.validate_objects(objects)


def test_observability_objects(renders: dict[str, Objects]) -> None:
    objects = renders["values-hall-b.yaml"]
    rule = one(objects, "PrometheusRule", RELEASE)
    assert rule["spec"] == yaml.safe_load((cc.ALERTS).read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Every hall's Prometheus finds its ServiceMonitor and rules by its own release label.
    for label in HALLS:
        values = yaml.safe_load((cc.CHART / label).read_text())["metrics"]
        for kind, key in (
            ("ServiceMonitor", "serviceMonitor"),
            ("PrometheusRule", "prometheusRule"),
        ):
            assert values[key]["enabled"] is True, (label, key)
            wanted = values[key]["labels"]
            assert "release" in wanted, (label, key)
            got = one(renders[label], kind, RELEASE)["metadata"]["labels"]
            assert wanted.items() <= got.items(), (label, kind)
    monitor = one(objects, "ServiceMonitor", RELEASE)
    assert "app.kubernetes.io/component" in monitor["spec"]["targetLabels"]
    ports = {e["port"]: e["path"] for e in monitor["spec"]["endpoints"]}
    assert ports == {
        "metrics": "/metrics",
        "http": "/metrics",
        "rest": "/monitoring/prometheus/metrics",
    }
    # Each component is scraped through exactly one Service.
    scraped = [
        s["metadata"]["labels"]["app.kubernetes.io/component"]
        for s in find(objects, "Service")
        if s["metadata"]["labels"].get("hydra/scrape") == "true"
    ]
    assert sorted(scraped) == ["api", "balancer", "feeder", "keeper", "predictor", "tfserving"]
    assert not find(renders["(defaults)"], "PrometheusRule")
    assert not find(renders["(defaults)"], "ServiceMonitor")
    dashboards = [
        c
        for c in find(objects, "ConfigMap")
        if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 2
    contents = {k: json.loads(v) for c in dashboards for k, v in c["data"].items()}
    assert set(contents) == {"hydra-pipeline.json", "hydra-weights.json"}
    weights = contents["hydra-weights.json"]
    variables = {v["name"]: v for v in weights["templating"]["list"]}
    assert "FROM plot_types" in variables["plot_type"]["query"]
    assert variables["datasource"]["query"] == "mysql"
