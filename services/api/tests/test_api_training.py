"""Training runs: a real local child process, and Kubernetes Jobs.

There is no Kubernetes API server here, so the Kubernetes tests run the real ``kubernetes``
client against a small local HTTP server that answers the two calls Hydra makes (create a
Job, read its status) and records what it was sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hydra_common.db.schema import Role

FAKE_TRAINER = """
import json, sys
open(sys.argv[1], "w").write(json.dumps(sys.argv[2:]))
sys.exit(int(sys.argv[2] == "fail"))
"""


async def _wait_status(client: Any, run_id: int, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(300):
        body = (await client.get(f"/api/training-runs/{run_id}")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"run stayed {body.get('status')}")


async def test_local_training_starts_hydra_train_process(api_factory: Any, tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(FAKE_TRAINER)
    argv_file = tmp_path / "argv.json"
    api = await api_factory(training_command=f"{sys.executable} {script} {argv_file}")
    pt = await api.plot_type()
    viewer = await api.as_role(Role.VIEWER)
    body = {"plot_type": pt.name, "architecture": "small", "sampling": "undersample", "epochs": 3}
    assert (await viewer.post("/api/training-runs", json=body)).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    r = await expert.post("/api/training-runs", json=body)
    assert r.status_code == 201
    run = r.json()
    assert run["status"] == "queued" and run["options"] == {"epochs": 3}
    assert run["sampling_method"] == "undersample" and run["job_name"] is None
    for _ in range(300):
        if argv_file.exists() and argv_file.read_text():
            break
        await asyncio.sleep(0.1)
    assert json.loads(argv_file.read_text()) == [pt.name, "--run-id", str(run["id"])]
    listed = await api.client.get("/api/training-runs", params={"plot_type": pt.name})
    assert [x["id"] for x in listed.json()["items"]] == [run["id"]]


async def test_local_training_failure_is_recorded(api_factory: Any, tmp_path: Path) -> None:
    script = tmp_path / "trainer.py"
    script.write_text(FAKE_TRAINER)
    api = await api_factory(training_command=f"{sys.executable} {script} {tmp_path / 'a'} fail")
    pt = await api.plot_type()
    dev = await api.as_role(Role.DEVELOPER)
    r = await dev.post("/api/training-runs", json={"plot_type": pt.name})
    failed = await _wait_status(api.client, r.json()["id"], "failed")
    assert "exited with code 1" in failed["message"]


class _FakeKubernetes(BaseHTTPRequestHandler):
    jobs: dict[str, dict[str, Any]] = {}
    requests: list[tuple[str, str]] = []

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.requests.append(("POST", self.path))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.jobs[body["metadata"]["name"]] = body
        self._reply(201, body)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path))
        name = self.path.split("/jobs/")[1].split("/")[0]
        job = self.jobs.get(name)
        if job is None:
            self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
            return
        self._reply(200, {**job, "status": {"failed": 1}})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_kubernetes() -> Iterator[str]:
    """A local HTTP server standing in for the Kubernetes API server."""
    _FakeKubernetes.jobs = {}
    _FakeKubernetes.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeKubernetes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_kubernetes_training_creates_a_gpu_job(
    api_factory: Any, fake_kubernetes: str
) -> None:
    api = await api_factory(
        training_backend="kubernetes",
        kubernetes_host=fake_kubernetes,
        training_namespace="hall-d",
        training_image="ghcr.io/jlab/hydra-trainer:1.0",
        training_env_secret="hydra-db",
        training_models_claim="hydra-models",
        training_node_selector={"gpu": "a100"},
    )
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    r = await admin.post("/api/training-runs", json={"plot_type": pt.name, "epochs": 5})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["job_name"] and run["job_name"].startswith(f"hydra-train-{run['id']}-")
    assert ("POST", "/apis/batch/v1/namespaces/hall-d/jobs") in _FakeKubernetes.requests
    job = _FakeKubernetes.jobs[run["job_name"]]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["train", pt.name, "--run-id", str(run["id"])]
    assert container["image"] == "ghcr.io/jlab/hydra-trainer:1.0"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert container["envFrom"] == [{"secretRef": {"name": "hydra-db"}}]
    assert {"name": "HYDRA_MODEL_DIR", "value": "/var/lib/hydra/models"} in container["env"]
    assert pod["nodeSelector"] == {"gpu": "a100"} and pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The Job failed (the fake says so): reading the run notices it.
    failed = await _wait_status(api.client, run["id"], "failed")
    assert run["job_name"] in failed["message"]


async def test_kubernetes_unreachable_marks_run_failed(api_factory: Any) -> None:
    api = await api_factory(
        training_backend="kubernetes", kubernetes_host="http://127.0.0.1:1", training_image="x"
    )
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    r = await admin.post("/api/training-runs", json={"plot_type": pt.name})
    assert r.status_code == 201 and r.json()["status"] == "failed"
    assert "could not start" in r.json()["message"]
