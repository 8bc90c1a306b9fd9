"""Training runs as Kubernetes Jobs, through the official ``kubernetes`` client.

Kept thin on purpose: a Job manifest, create it, read its state, delete it. The client is
synchronous, so callers run these functions in a worker thread.

In a cluster the Job comes from the chart: the ``<release>-training-job`` ConfigMap, mounted
at ``HYDRA_TRAINING_JOB_TEMPLATE``, holds a whole Job whose labels, resources, scheduling,
deadline and retries come from the chart's values; :func:`render_job` fills in only the run
(its name, two labels, the ``hydra train`` arguments). Without a template (a development
cluster, tests) :func:`job_manifest` builds a plain Job from the ``HYDRA_TRAINING_*`` settings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hydra_api.settings import ApiSettings

if TYPE_CHECKING:
    from kubernetes import client as k8s_client

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MODELS_MOUNT = "/var/lib/hydra/models"
STORAGE_MOUNT = "/var/lib/hydra/storage"
RUN_LABEL = "hydra.jlab.org/training-run"
PLOT_TYPE_LABEL = "hydra.jlab.org/plot-type"
TRAINER_CONTAINER = "trainer"


TEMPLATE_ENV = "HYDRA_TRAINING_JOB_TEMPLATE"  # the setting's variable (tests set it)


def namespace(settings: ApiSettings) -> str:
    """The namespace training Jobs run in (default: the API pod's own)."""
    if settings.training_namespace:
        return settings.training_namespace
    if NAMESPACE_FILE.is_file():
        return NAMESPACE_FILE.read_text().strip()
    return "default"


def _kubernetes() -> Any:
    """The ``kubernetes.client`` module, imported on first use: with its OAuth and YAML
    dependencies it is a second of CPU, paid by every API (re)start although only a hall
    that trains in its cluster ever calls it."""
    from kubernetes import client

    return client


def api_client(settings: ApiSettings) -> k8s_client.ApiClient:
    """A client for the configured API server, or the in-cluster one."""
    from kubernetes import config as k8s_config

    kube = _kubernetes()
    cfg = kube.Configuration()
    if settings.kubernetes_host:
        cfg.host = settings.kubernetes_host
    else:
        k8s_config.load_incluster_config(client_configuration=cfg)
    api: k8s_client.ApiClient = kube.ApiClient(cfg)
    return api


def job_name(run_id: int, plot_type: str, prefix: str = "hydra-train-") -> str:
    """A DNS-1123 name (at most 63 characters) for the Job of a training run."""
    base = f"{prefix}{run_id}"
    room = 63 - len(base) - 1
    slug = re.sub(r"[^a-z0-9-]+", "-", plot_type.lower()).strip("-")[: min(30, room)].strip("-")
    return f"{base}-{slug}" if slug and room > 0 else base[:63].rstrip("-")


def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters of ``[A-Za-z0-9_.-]``, alphanumeric ends)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63].strip("_.-")


def template_path(settings: ApiSettings) -> str:
    """The chart's Job template file (``HYDRA_TRAINING_JOB_TEMPLATE``); "" = none."""
    configured = settings.training_job_template
    return str(configured)


def load_template(path: str | Path) -> dict[str, Any]:
    """The Job template the chart mounts (one YAML document, a batch/v1 Job)."""
    job = yaml.safe_load(Path(path).read_text())
    if not isinstance(job, dict) or job.get("kind") != "Job":
        raise ValueError(f"{path} holds no Kubernetes Job")
    return job


def render_job(
    template: dict[str, Any], run_id: int, plot_type: str, trainer_args: Sequence[str]
) -> dict[str, Any]:
    """The template's Job for one run: its name, run and plot-type labels, ``hydra train`` args.

    Everything else (the chart's labels, which the NetworkPolicies select, resources,
    tolerations, node selector, pull secrets, deadline, retries) is kept as the chart rendered
    it. ``trainer_args`` start with the plot type (the arguments after ``hydra train``).
    """
    job = copy.deepcopy(template)
    metadata = job.setdefault("metadata", {})
    prefix = str(metadata.pop("generateName", "") or "hydra-train-")
    metadata["name"] = job_name(run_id, plot_type, prefix)
    run_labels = {RUN_LABEL: str(run_id), PLOT_TYPE_LABEL: label_value(plot_type)}
    metadata["labels"] = {**(metadata.get("labels") or {}), **run_labels}
    pod = job.setdefault("spec", {}).setdefault("template", {})
    pod_meta = pod.setdefault("metadata", {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **run_labels}
    containers = pod.get("spec", {}).get("containers") or []
    trainer = next((c for c in containers if c.get("name") == TRAINER_CONTAINER), None)
    if trainer is None:
        raise ValueError(f"the Job template has no container named {TRAINER_CONTAINER!r}")
    trainer["args"] = [str(a) for a in trainer_args]
    return job


def job_manifest(
    settings: ApiSettings, run_id: int, plot_type: str, trainer_args: Sequence[str]
) -> dict[str, Any]:
    """The Job that runs ``hydra train PLOT_TYPE --run-id N ...`` (``trainer_args``, which
    start with the plot type): the chart's template when one is mounted, else a plain one."""
    path = template_path(settings)
    if path:
        return render_job(load_template(path), run_id, plot_type, trainer_args)
    return builtin_job(settings, run_id, plot_type, trainer_args)


def builtin_job(
    settings: ApiSettings, run_id: int, plot_type: str, trainer_args: Sequence[str]
) -> dict[str, Any]:
    """A Job from the ``HYDRA_TRAINING_*`` settings alone, for clusters without the chart."""
    name = job_name(run_id, plot_type)
    labels = {
        "app.kubernetes.io/name": "hydra-trainer",
        "app.kubernetes.io/part-of": "hydra",
        "app.kubernetes.io/component": "training",
        RUN_LABEL: str(run_id),
        "hydra.jlab.org/hall": re.sub(r"[^A-Za-z0-9_.-]", "-", settings.hall)[:63],
    }
    env: list[dict[str, Any]] = [{"name": "HYDRA_HALL", "value": settings.hall}]
    env_from: list[dict[str, Any]] = []
    if settings.training_env_configmap:
        env_from.append({"configMapRef": {"name": settings.training_env_configmap}})
    if settings.training_env_secret:
        env_from.append({"secretRef": {"name": settings.training_env_secret}})
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    for vol, claim, mount, var in (
        ("models", settings.training_models_claim, MODELS_MOUNT, "HYDRA_MODEL_DIR"),
        ("storage", settings.training_storage_claim, STORAGE_MOUNT, "HYDRA_STORAGE_DIR"),
    ):
        if claim:
            volumes.append({"name": vol, "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": vol, "mountPath": mount})
            env.append({"name": var, "value": mount})
    resources: dict[str, Any] = {}
    tolerations: list[dict[str, Any]] = []
    if settings.training_gpus:
        resources = {"limits": {"nvidia.com/gpu": str(settings.training_gpus)}}
        tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "trainer",
                "image": settings.training_image,
                "command": ["hydra"],
                "args": ["train", *trainer_args],
                "env": env,
                "envFrom": env_from,
                "resources": resources,
                "volumeMounts": mounts,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": volumes,
        "tolerations": tolerations,
        "nodeSelector": dict(settings.training_node_selector),
    }
    if settings.training_service_account:
        pod_spec["serviceAccountName"] = settings.training_service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,  # a failed run is reported, not retried behind the user's back
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def create_training_job(
    settings: ApiSettings, run_id: int, plot_type: str, trainer_args: Sequence[str]
) -> str:
    """Create the Job of a training run; returns its name."""
    k8s_client = _kubernetes()
    with api_client(settings) as api:
        # The client takes dicts too.
        manifest: Any = job_manifest(settings, run_id, plot_type, trainer_args)
        job = k8s_client.BatchV1Api(api).create_namespaced_job(namespace(settings), manifest)
    return str(job.metadata.name if job.metadata else manifest["metadata"]["name"])


def job_state(settings: ApiSettings, name: str) -> str:
    """``running``, ``succeeded``, ``failed`` or ``missing`` for a training Job."""
    k8s_client = _kubernetes()
    with api_client(settings) as api:
        try:
            job = k8s_client.BatchV1Api(api).read_namespaced_job_status(name, namespace(settings))
        except k8s_client.ApiException as exc:
            if exc.status == 404:
                return "missing"
            raise
    status = job.status
    if status is None:
        return "running"
    if status.succeeded:
        return "succeeded"
    if status.failed:
        return "failed"
    return "running"


def delete_job(settings: ApiSettings, name: str) -> bool:
    """Delete a training Job and its pod (a cancelled run); False when it was already gone."""
    k8s_client = _kubernetes()
    with api_client(settings) as api:
        try:
            k8s_client.BatchV1Api(api).delete_namespaced_job(
                name, namespace(settings), propagation_policy="Background"
            )
        except k8s_client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
    return True
