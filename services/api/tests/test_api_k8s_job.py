"""Training Jobs rendered from the chart's template, as the API submits them.

The template is the real one: the chart rendered with the real helm (deploy/check_chart.py).
The rendered Job is checked with the ``kubernetes`` client's own models and against the
Kubernetes 1.31 schema. Only the Kubernetes API server is mocked (none can run here): a local
HTTP server that records what the real client sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client

from deploy import check_chart as cc
from hydra_api import k8s
from hydra_api.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[3]
RELEASE = "hydra-check"
ARGS = ["FTOF_adcEnergy_s1", "--run-id", "42", "--arch", "inceptionv3", "--sampling", "normal"]


SETS = [
    "global.imagePullSecrets[0].name=regcred",
    "trainer.activeDeadlineSeconds=7200",
    "trainer.backoffLimit=1",
    "trainer.gpuResource=amd.com/gpu",
    "trainer.labels.team=halld",
]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = cc.helm_template(cc.CHART / "values-hall-b.yaml", SETS)
    return objects


def _object(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.fixture
def template_file(rendered: list[dict[str, Any]], tmp_path: Path) -> Path:
    configmap = _object(rendered, "ConfigMap", f"{RELEASE}-training-job")
    path = tmp_path / "job.yaml"
    path.write_text(configmap["data"]["job.yaml"])
    return path


def _as_v1job(manifest: dict[str, Any]) -> k8s_client.V1Job:
    """The client's own deserialisation: unknown fields are dropped, so compare back."""
    api = k8s_client.ApiClient()
    job = api._ApiClient__deserialize(manifest, "V1Job")  # type: ignore[attr-defined]
    assert isinstance(job, k8s_client.V1Job)
    assert api.sanitize_for_serialization(job) == manifest, "fields the client does not know"
    return job


def test_rendered_job_is_a_valid_v1job_with_the_values(template_file: Path) -> None:
    manifest = k8s.render_job(k8s.load_template(template_file), 42, "FTOF_adcEnergy_s1", ARGS)
    job = _as_v1job(manifest)
    cc.validate_objects([manifest])  # Kubernetes 1.31 schema, strict
    assert job.metadata.name == f"{RELEASE}-train-42-ftof-adcenergy-s1"
    assert job.spec.active_deadline_seconds == 7200 and job.spec.backoff_limit == 1
    pod = job.spec.template.spec
    assert [s.name for s in pod.image_pull_secrets] == ["regcred"]
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [t.key for t in pod.tolerations] == ["nvidia.com/gpu"]
    (container,) = pod.containers
    assert container.name == "trainer"
    assert container.command == ["hydra", "train"] and container.args == ARGS
    assert container.image == "registry.example.org/hydra/hydra-trainer:0.1.0-gpu"
    assert container.resources.limits["amd.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in container.resources.limits
    labels = job.spec.template.metadata.labels
    assert labels[k8s.RUN_LABEL] == "42" and labels[k8s.PLOT_TYPE_LABEL] == "FTOF_adcEnergy_s1"
    assert labels["team"] == "halld" and job.metadata.labels[k8s.RUN_LABEL] == "42"


def test_job_pods_are_what_the_trainer_network_policy_selects(
    rendered: list[dict[str, Any]], template_file: Path
) -> None:
    manifest = k8s.render_job(k8s.load_template(template_file), 7, "x", ["x"])
    policy = _object(rendered, "NetworkPolicy", f"{RELEASE}-trainer")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    pod_labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    # And the policy lets it reach the database.
    assert any(rule["ports"][0]["port"] == 3306 for rule in policy["spec"]["egress"])


def test_template_is_not_changed_by_rendering(template_file: Path) -> None:
    template = k8s.load_template(template_file)
    before = json.dumps(template, sort_keys=True)
    first = k8s.render_job(template, 1, "a", ["a"])
    second = k8s.render_job(template, 2, "b", ["b"])
    assert json.dumps(template, sort_keys=True) == before
    assert first["metadata"]["name"] != second["metadata"]["name"]


def test_long_names_stay_valid(template_file: Path) -> None:
    template = k8s.load_template(template_file)
    template["metadata"]["generateName"] = "h" * 44 + "-train-"
    manifest = k8s.render_job(template, 123456, "A_very_long_plot_type_name" * 3, ["p"])
    name = manifest["metadata"]["name"]
    assert len(name) <= 63 and name[-1].isalnum() and name.startswith("h" * 44 + "-train-123456")
    assert len(manifest["metadata"]["labels"][k8s.PLOT_TYPE_LABEL]) <= 63


def test_a_template_without_a_trainer_container_is_refused(template_file: Path) -> None:
    template = k8s.load_template(template_file)
    template["spec"]["template"]["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(ValueError, match="trainer"):
        k8s.render_job(template, 1, "a", ["a"])
    bad = template_file.with_name("bad.yaml")
    bad.write_text(yaml.safe_dump({"kind": "Pod"}))
    with pytest.raises(ValueError, match="no Kubernetes Job"):
        k8s.load_template(bad)


class _FakeApiServer(BaseHTTPRequestHandler):
    """The mock: records the Job bodies the real ``kubernetes`` client posts."""

    posted: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.posted.append((self.path, body))
        data = json.dumps(body).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    _FakeApiServer.posted = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_create_training_job_submits_the_chart_job(
    api_server: str, template_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(k8s.TEMPLATE_ENV, str(template_file))
    settings = ApiSettings(kubernetes_host=api_server, training_namespace="hallb")
    name = k8s.create_training_job(settings, 42, "FTOF_adcEnergy_s1", ARGS)
    ((path, body),) = _FakeApiServer.posted
    assert path == "/apis/batch/v1/namespaces/hallb/jobs"
    assert name == body["metadata"]["name"] == f"{RELEASE}-train-42-ftof-adcenergy-s1"
    expected = k8s.render_job(k8s.load_template(template_file), 42, "FTOF_adcEnergy_s1", ARGS)
    assert body == expected
    _as_v1job(body)


def test_without_a_template_the_builtin_job_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(k8s.TEMPLATE_ENV, raising=False)
    settings = ApiSettings(training_image="hydra-trainer:dev")
    manifest = k8s.job_manifest(settings, 3, "p", ["p", "--run-id", "3"])
    assert manifest["metadata"]["name"] == "hydra-train-3-p"
    assert manifest["spec"]["template"]["spec"]["containers"][0]["args"][0] == "train"
