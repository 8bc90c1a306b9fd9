"""Training runs: parameters, the queue and cancelling, with real local child processes
(a fake ``hydra train`` that records its arguments), and Kubernetes Jobs.

There is no Kubernetes API server here, so the Kubernetes tests run the real ``kubernetes``
client against a small local HTTP server -- a mock of the API server -- that answers the
three calls Hydra makes (create a Job, read its status, delete it) and records what it was
sent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args

import pytest
import sqlalchemy as sa

from hydra_api.models import Architecture, Init, Sampling
from hydra_api.training import TrainingLauncher
from hydra_common.db.schema import AuditLog, Role, TrainingRun, TrainingRunStatus
from hydra_common.training import ARCHITECTURES, INITS, SAMPLING_METHODS
from hydra_testsupport import eventually_async as eventually

# Stands in for ``hydra train``: records its arguments and pid in OUT/argv-<run>.json, then
# waits until the test writes OUT/release-<run> (the exit code) -- a running training.
FAKE_TRAINER = """
import json, os, sys, time
out, args = sys.argv[1], sys.argv[2:]
run = args[args.index("--run-id") + 1]
tmp = os.path.join(out, f".argv-{run}")
with open(tmp, "w") as fh:
    json.dump({"argv": args, "pid": os.getpid()}, fh)
os.replace(tmp, os.path.join(out, f"argv-{run}.json"))
release = os.path.join(out, f"release-{run}")
deadline = time.monotonic() + 120
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(int(open(release).read() or 0) if os.path.exists(release) else 3)
"""


async def _wait_status(client: Any, run_id: int, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal body
        body = (await client.get(f"/api/training-runs/{run_id}")).json()
        return bool(body["status"] == status)

    await eventually(reached, f"run {run_id} to be {status} (is {body.get('status')})")
    return body


async def _trainer_reports_success(api: Any, run_id: int) -> None:
    """What a trainer writes at its end (a Job elsewhere, or another replica's process)."""
    async with api.session() as s:
        await s.execute(
            sa.update(TrainingRun)
            .where(TrainingRun.id == run_id)
            .values(status=TrainingRunStatus.SUCCEEDED)
        )
        await s.commit()


class Trainer:
    """The fake trainer's folder: what each run was started with, and its release."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.script = folder / "trainer.py"
        self.script.write_text(FAKE_TRAINER)

    @property
    def command(self) -> str:
        return f"{sys.executable} {self.script} {self.folder}"

    def started(self, run_id: int) -> dict[str, Any] | None:
        path = self.folder / f"argv-{run_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    async def wait_started(self, run_id: int) -> dict[str, Any]:
        async def check() -> bool:
            return self.started(run_id) is not None

        await eventually(check, f"run {run_id}'s trainer to start")
        started = self.started(run_id)
        assert started is not None
        return started

    def release(self, run_id: int, code: int = 0) -> None:
        # Written whole, then renamed: the trainer may look between the file's creation and
        # its write, read nothing and exit 0 instead of ``code``.
        tmp = self.folder / f".release-{run_id}"
        tmp.write_text(str(code))
        tmp.replace(self.folder / f"release-{run_id}")


@pytest.fixture
def trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trainer:
    monkeypatch.setattr(TrainingLauncher, "poll_seconds", 0.2)
    folder = tmp_path / "trainer"
    folder.mkdir()
    return Trainer(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_local_training_passes_every_parameter_to_hydra_train(
    api_factory: Any, trainer: Trainer
) -> None:
    api = await api_factory(training_command=trainer.command)
    pt = await api.plot_type()
    viewer = await api.as_role(Role.VIEWER)
    body = {
        "plot_type": pt.name,
        "architecture": "inceptionv3-cbam",
        "sampling": "oversample",
        "epochs": 3,
        "init": "random",
    }
    assert (await viewer.post("/api/training-runs", json=body)).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    r = await expert.post("/api/training-runs", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "running" and run["job_name"] is None
    assert run["architecture"] == "inceptionv3-cbam" and run["sampling_method"] == "oversample"
    assert run["options"] == {"epochs": 3, "init": "random"}
    started = await trainer.wait_started(run["id"])
    assert started["argv"] == [
        pt.name, "--run-id", str(run["id"]), "--arch", "inceptionv3-cbam",
        "--sampling", "oversample", "--epochs", "3", "--init", "random",
    ]  # fmt: skip
    listed = await api.client.get("/api/training-runs", params={"plot_type": pt.name})
    assert [x["id"] for x in listed.json()["items"]] == [run["id"]]
    trainer.release(run["id"], 0)
    # It ended without the trainer's report (a real trainer writes succeeded first).
    ended = await _wait_status(api.client, run["id"], "failed")
    assert "without a report" in ended["message"]


async def test_defaults_come_from_the_plot_type_then_hydra(
    api_factory: Any, trainer: Trainer
) -> None:
    api = await api_factory(training_command=trainer.command)
    admin = await api.as_role(Role.ADMIN)
    plain, tuned = await api.plot_type(), await api.plot_type()
    r = await admin.patch(
        f"/api/plot-types/{tuned.id}",
        json={"default_architecture": "small", "default_sampling": "normal"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["default_architecture"], r.json()["default_sampling"]) == ("small", "normal")
    for pt, argv_tail in (
        (plain, ["--arch", "inceptionv3", "--sampling", "undersample", "--init", "imagenet"]),
        (tuned, ["--arch", "small", "--sampling", "normal", "--init", "random"]),
    ):
        r = await admin.post("/api/training-runs", json={"plot_type": pt.name})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["options"] == {"epochs": None, "init": argv_tail[-1]}
        started = await trainer.wait_started(run["id"])
        assert started["argv"] == [pt.name, "--run-id", str(run["id"]), *argv_tail]
        trainer.release(run["id"], 1)
    # A request overrides the plot type's default; null clears the default again.
    r = await admin.patch(f"/api/plot-types/{tuned.id}", json={"default_architecture": None})
    assert r.json()["default_architecture"] is None and r.json()["default_sampling"] == "normal"


@pytest.mark.parametrize(
    "bad",
    [
        {"architecture": "os:system"},
        {"architecture": "resnet"},
        {"architecture": "hydra_trainer.architectures:small"},
        {"sampling": "smote"},
        {"init": "/etc/passwd"},
        {"epochs": 0},
        {"architecture": "small", "init": "imagenet"},  # the small CNN has no ImageNet weights
    ],
)
async def test_unknown_parameters_are_refused(api: Any, bad: dict[str, Any]) -> None:
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    r = await admin.post("/api/training-runs", json={"plot_type": pt.name, **bad})
    assert r.status_code == 422, r.text
    listed = await api.client.get("/api/training-runs", params={"plot_type": pt.name})
    assert listed.json()["items"] == []


async def test_plot_type_defaults_are_validated(api: Any) -> None:
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    for body in ({"default_architecture": "os:system"}, {"default_sampling": "smote"}):
        assert (await admin.patch(f"/api/plot-types/{pt.id}", json=body)).status_code == 422
    expert = await api.as_role(Role.EXPERT, (pt,))
    r = await expert.patch(f"/api/plot-types/{pt.id}", json={"default_architecture": "small"})
    assert r.status_code == 403
    options = (await api.client.get("/api/training-options")).json()
    assert options["architectures"] == list(ARCHITECTURES)
    assert options["default_init"]["small"] == "random"


def test_request_literals_match_the_shared_lists() -> None:
    assert get_args(Architecture) == ARCHITECTURES
    assert get_args(Sampling) == SAMPLING_METHODS
    assert get_args(Init) == INITS


async def test_one_run_per_plot_type_the_queue_follows(api_factory: Any, trainer: Trainer) -> None:
    api = await api_factory(training_command=trainer.command)
    pt, other = await api.plot_type(), await api.plot_type()
    dev = await api.as_role(Role.DEVELOPER)

    async def train(name: str) -> dict[str, Any]:
        r = await dev.post("/api/training-runs", json={"plot_type": name, "architecture": "small"})
        assert r.status_code == 201, r.text
        return dict(r.json())

    first = await train(pt.name)
    assert first["status"] == "running"
    await trainer.wait_started(first["id"])
    second, third = await train(pt.name), await train(pt.name)
    assert second["status"] == "queued" and third["status"] == "queued"
    elsewhere = await train(other.name)  # another plot type does not wait
    assert elsewhere["status"] == "running"
    assert trainer.started(second["id"]) is None
    # The first one's process ends: the oldest queued run starts.
    trainer.release(first["id"], 1)
    await trainer.wait_started(second["id"])
    assert (await api.client.get(f"/api/training-runs/{third['id']}")).json()["status"] == "queued"
    # The trainer reports its end in the row (a Job elsewhere, or another replica's
    # process): the poll notices it and starts the next one while this process still lives.
    await api.app.state.hydra.running_launcher().poll_once()  # a look while it runs
    await _trainer_reports_success(api, second["id"])
    await trainer.wait_started(third["id"])
    for run in (second, third, elsewhere):
        trainer.release(run["id"], 0)


async def test_an_end_seen_by_a_failed_pass_is_seen_again(
    api_factory: Any, trainer: Trainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TrainingLauncher, "poll_seconds", 3600.0)  # only the test looks
    api = await api_factory(training_command=trainer.command)
    launcher = api.app.state.hydra.running_launcher()
    pt = await api.plot_type()
    dev = await api.as_role(Role.DEVELOPER)
    body = {"plot_type": pt.name, "architecture": "small"}
    first = (await dev.post("/api/training-runs", json=body)).json()
    second = (await dev.post("/api/training-runs", json=body)).json()
    assert (first["status"], second["status"]) == ("running", "queued")
    await launcher.poll_once()  # a look while the first one runs
    await _trainer_reports_success(api, first["id"])
    # The pass that sees the end cannot start the next run (the database went away): the
    # next pass still knows the plot type's run ended, and starts it.
    start_queued = launcher.start_queued

    async def database_away(plot_type_id: int | None = None) -> None:
        raise ConnectionError("database away")

    monkeypatch.setattr(launcher, "start_queued", database_away)
    with pytest.raises(ConnectionError):
        await launcher.poll_once()
    monkeypatch.setattr(launcher, "start_queued", start_queued)
    await launcher.poll_once()
    await trainer.wait_started(second["id"])
    assert (await api.client.get(f"/api/training-runs/{second['id']}")).json()["status"] == (
        "running"
    )
    for run in (first, second):
        trainer.release(run["id"], 0)


async def test_cancel_a_queued_run_and_a_running_one(api_factory: Any, trainer: Trainer) -> None:
    api = await api_factory(training_command=trainer.command)
    pt = await api.plot_type()
    expert = await api.as_role(Role.EXPERT, (pt,))
    body = {"plot_type": pt.name, "architecture": "small"}
    running = (await expert.post("/api/training-runs", json=body)).json()
    queued = (await expert.post("/api/training-runs", json=body)).json()
    assert (running["status"], queued["status"]) == ("running", "queued")
    pid = (await trainer.wait_started(running["id"]))["pid"]
    viewer = await api.as_role(Role.VIEWER)
    other_expert = await api.as_role(Role.EXPERT)
    for who in (viewer, other_expert):
        r = await who.post(f"/api/training-runs/{queued['id']}/cancel")
        assert r.status_code == 403
    r = await expert.post(f"/api/training-runs/{queued['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    again = await expert.post(f"/api/training-runs/{queued['id']}/cancel")
    assert again.status_code == 409
    later = (await expert.post("/api/training-runs", json=body)).json()
    # Cancelling the running one kills its process group; the next queued run starts, and
    # it is the later one: the cancelled run never starts.
    r = await expert.post(f"/api/training-runs/{running['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text

    async def gone() -> bool:
        return not _alive(pid)

    await eventually(gone, "the cancelled trainer process to end")
    await trainer.wait_started(later["id"])
    assert trainer.started(queued["id"]) is None
    for run in (running, queued):
        body_now = (await api.client.get(f"/api/training-runs/{run['id']}")).json()
        assert body_now["status"] == "cancelled"
    async with api.session() as s:
        actions = (
            await s.scalars(
                sa.select(AuditLog.action).where(
                    AuditLog.entity == "training_run",
                    AuditLog.entity_id.in_([str(running["id"]), str(queued["id"])]),
                )
            )
        ).all()
    assert sorted(actions) == ["cancel", "cancel", "train", "train"]
    trainer.release(later["id"], 0)


async def test_local_training_failure_is_recorded(api_factory: Any, trainer: Trainer) -> None:
    api = await api_factory(training_command=trainer.command)
    pt = await api.plot_type()
    dev = await api.as_role(Role.DEVELOPER)
    r = await dev.post("/api/training-runs", json={"plot_type": pt.name, "architecture": "small"})
    await trainer.wait_started(r.json()["id"])
    trainer.release(r.json()["id"], 1)
    failed = await _wait_status(api.client, r.json()["id"], "failed")
    assert "exited with code 1" in failed["message"]


class _FakeKubernetes(BaseHTTPRequestHandler):
    """A mock of the Kubernetes API server (none can exist here): Jobs in a dict."""

    jobs: dict[str, dict[str, Any]] = {}
    requests: list[tuple[str, str]] = []
    job_status: dict[str, Any] = {"failed": 1}

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
        self._reply(200, {**job, "status": self.job_status})

    def do_DELETE(self) -> None:
        self.requests.append(("DELETE", self.path))
        name = self.path.split("/jobs/")[1].split("?")[0]
        if self.jobs.pop(name, None) is None:
            self._reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
            return
        self._reply(200, {"kind": "Status", "status": "Success"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_kubernetes() -> Iterator[str]:
    """A local HTTP server standing in for the Kubernetes API server."""
    _FakeKubernetes.jobs = {}
    _FakeKubernetes.requests = []
    _FakeKubernetes.job_status = {"failed": 1}
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
    body = {"plot_type": pt.name, "epochs": 5, "sampling": "oversample"}
    r = await admin.post("/api/training-runs", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["job_name"] and run["job_name"].startswith(f"hydra-train-{run['id']}-")
    assert ("POST", "/apis/batch/v1/namespaces/hall-d/jobs") in _FakeKubernetes.requests
    job = _FakeKubernetes.jobs[run["job_name"]]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [
        "train", pt.name, "--run-id", str(run["id"]), "--arch", "inceptionv3",
        "--sampling", "oversample", "--epochs", "5", "--init", "imagenet",
    ]  # fmt: skip
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


async def test_kubernetes_queue_and_cancel_delete_the_job(
    api_factory: Any, fake_kubernetes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TrainingLauncher, "poll_seconds", 0.2)
    _FakeKubernetes.job_status = {"active": 1}
    api = await api_factory(
        training_backend="kubernetes",
        kubernetes_host=fake_kubernetes,
        training_namespace="hall-d",
        training_image="ghcr.io/jlab/hydra-trainer:1.0",
    )
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    body = {"plot_type": pt.name, "architecture": "small"}
    first = (await admin.post("/api/training-runs", json=body)).json()
    second = (await admin.post("/api/training-runs", json=body)).json()
    assert first["status"] == "running" and first["job_name"] in _FakeKubernetes.jobs
    assert second["status"] == "queued" and second["job_name"] is None
    r = await admin.post(f"/api/training-runs/{first['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    path = f"/apis/batch/v1/namespaces/hall-d/jobs/{first['job_name']}"
    assert [m for m, p in _FakeKubernetes.requests if p.startswith(path)].count("DELETE") == 1
    assert first["job_name"] not in _FakeKubernetes.jobs
    # The queue moves on: the next run gets its Job.
    started = await _wait_status(api.client, second["id"], "running")

    async def has_job() -> bool:
        return started["job_name"] is not None or bool(
            (await api.client.get(f"/api/training-runs/{second['id']}")).json()["job_name"]
        )

    await eventually(has_job, "the next run's Job")
    assert len(_FakeKubernetes.jobs) == 1
