"""The whole pipeline on MariaDB: simulated images land, verdicts come out, nothing is lost.

Real parts only: every service runs as its own process (the same launcher ``hydra up``
uses) on loopback ports, the bundled model server serves a `small` model that the trainer
trained on simulated plots in this test, and the database is the MariaDB server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hydra_common.db.engine import make_engine
from hydra_common.launcher import LocalStack, Ports, hall_environment
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database
from hydra_testsupport.rows import sql_rows

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

TRAINED = "FTOF_adcTime_s1"  # gets a trained model
UNTRAINED = "RF_time"  # no model: NoModel verdicts, unbiased sample at 100 %
IGNORED = "HEL_board"  # ignored plot type: skipped by the feeder
# A plot type with labels no one defined before, set up with the CLI alone.
CUSTOM = "CDC_ring_occupancy"
CUSTOM_LABELS = {"Good": "Fine", "Bad": "Dead_ring", "NoData": "Empty"}  # simulated -> hall's


@dataclass
class Hall:
    url: str
    data_dir: Path
    input_dir: Path
    stack: LocalStack
    truth: dict[str, str]  # relative source path -> simulated label


def _train(url: str, data_dir: Path) -> int:
    from hydra_common.db.engine import make_sessionmaker
    from hydra_trainer.bootstrap import DEMO_INPUT
    from hydra_trainer.catalog import find_spec
    from hydra_trainer.importer import import_images, scan_tree
    from hydra_trainer.pipeline import train_plot_type
    from hydra_trainer.registry import promote
    from hydra_trainer.settings import TrainerSettings
    from hydra_trainer.simulate import write_labelled_set
    from hydra_trainer.store import add_plot_type
    from hydra_trainer.train import TrainOptions

    settings = TrainerSettings(database_url=url, data_dir=data_dir)
    trained = find_spec(TRAINED, "demo")

    async def run() -> int:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as s, s.begin():
                await add_plot_type(
                    s, TRAINED, trained.labels, detector="FTOF", collect_percent=0.0
                )
                await add_plot_type(
                    s, UNTRAINED, ("Good", "Bad"), detector="RF", collect_percent=100.0
                )
                pt = await add_plot_type(s, IGNORED, ("Good", "Bad"), detector="HEL")
                pt.ignored = True
            with tempfile.TemporaryDirectory() as tmp:
                write_labelled_set(Path(tmp), trained, dict.fromkeys(trained.labels, 30), seed=7)
                async with sessions() as s, s.begin():
                    await import_images(s, scan_tree(Path(tmp)), TRAINED, settings.storage_root)
            options = TrainOptions(
                architecture="small",
                optimizer="adam",
                learning_rate=0.001,
                epochs=8,
                patience=3,
                train_fraction=0.8,
                seed=7,
                input_height=DEMO_INPUT[0],
                input_width=DEMO_INPUT[1],
            )
            outcome = await train_plot_type(settings, TRAINED, options, trained_by="e2e")
            async with sessions() as s, s.begin():
                await promote(s, outcome.model_id, by="e2e")
            return int(outcome.model_id)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _hydra(env: dict[str, str], *args: str) -> str:
    """Run the ``hydra`` command line as an operator would; its output."""
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "from hydra_common.cli import main; main()", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"hydra {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _custom_spec() -> Any:
    from hydra_trainer.catalog import PlotTypeSpec

    return PlotTypeSpec(CUSTOM, "CDC", "occupancy_disc", tuple(CUSTOM_LABELS))


def _train_custom_by_cli(url: str, data_dir: Path) -> None:
    """Add, import, train and promote a plot type whose labels are new, with the CLI only."""
    from hydra_trainer.simulate import write_labelled_set

    env = {**os.environ, "HYDRA_DATABASE_URL": url, "HYDRA_DATA_DIR": str(data_dir)}
    fine, dead, empty = CUSTOM_LABELS.values()
    out = _hydra(
        env, "plot-type", "add", CUSTOM, "--labels", f"{fine},{dead},{empty}", "--alarm", dead
    )
    assert dead in out
    _hydra(env, "plot-type", "defaults", CUSTOM, "--arch", "small", "--sampling", "normal")
    with tempfile.TemporaryDirectory() as tmp:
        write_labelled_set(Path(tmp), _custom_spec(), dict.fromkeys(CUSTOM_LABELS, 30), seed=11)
        for simulated, hall_label in CUSTOM_LABELS.items():
            (Path(tmp) / simulated).rename(Path(tmp) / hall_label)
        _hydra(env, "import", tmp, "--plot-type", CUSTOM)
    out = _hydra(
        env, "train", CUSTOM, "--epochs", "8", "--input-size", "96x128", "--optimizer", "adam",
        "--learning-rate", "0.001",
    )  # fmt: skip
    model_id = out.strip().splitlines()[-1].removeprefix("model id: ")
    _hydra(env, "promote", model_id)


def _simulate(input_dir: Path, runs: int, chunks: int, start_run: int) -> dict[str, str]:
    from hydra_trainer.catalog import find_spec
    from hydra_trainer.simulate import SimulationConfig, run_simulation

    truth: dict[str, str] = {}

    def on_image(path: Path, t: Any) -> None:
        truth[path.relative_to(input_dir).as_posix()] = t.label

    specs = [find_spec(TRAINED, "demo"), find_spec(UNTRAINED, "demo")]
    cfg = SimulationConfig(
        out_dir=input_dir,
        plot_types=specs,
        bad_fraction=0.3,
        runs=runs,
        chunks_per_run=chunks,
        start_run=start_run,
        seed=start_run,
        truth=False,
        interval=0.0,
    )
    run_simulation(cfg, on_image=on_image, sleep=lambda _s: None)
    return truth


def _wait_rows(url: str, expected: int, timeout: float = 240.0) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = sql_rows(url, "SELECT COUNT(*) FROM run_history")[0][0]
        if count >= expected:
            return int(count)
        time.sleep(1.0)
    return int(count)


@pytest.fixture(scope="module")
def hall() -> Iterator[Hall]:
    url = create_mysql_database("hydra_e2e")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-e2e-"))
    input_dir = data_dir / "input"
    input_dir.mkdir()
    _train(url, data_dir)
    _train_custom_by_cli(url, data_dir)
    ports = Ports.free()
    env = hall_environment(
        ports,
        url,
        data_dir,
        input_dir,
        HYDRA_MODEL_REFRESH_SECONDS="1",
        HYDRA_ADMIN_PASSWORD="e2e-admin-password",
        HYDRA_STATUS_PROBE_TIMEOUT="10",  # a loaded CI machine may answer slowly
        # Every confirmed alarm verdict beeps (1 of 1, no repeat interval): the test counts
        # them one by one; K of N is the keeper's own tests' subject.
        HYDRA_ALARM_BAD_COUNT="1",
        HYDRA_ALARM_WINDOW="1",
        HYDRA_ALARM_REPEAT_SECONDS="0",
    )
    stack = LocalStack(env, ports, data_dir / "logs")
    try:
        stack.start(wait=240)
        stack.wait_ready(timeout=240)
        hall = Hall(url, data_dir, input_dir, stack, {})
        _feed(hall)
        yield hall
    finally:
        stack.stop(10)
        drop_mysql_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)


def _rows(url: str) -> list[Any]:
    return sql_rows(
        url,
        """
        SELECT rh.source_path, rh.verdict, rh.confirmed, rh.plot_id, p.kept_reason,
               p.heatmap_path, p.image_path, pt.name
        FROM run_history rh JOIN plot_types pt ON pt.id = rh.plot_type_id
        LEFT JOIN plots p ON p.id = rh.plot_id""",
    )


def _feed(hall: Hall) -> None:
    """Put 300 plots through the hall (so any test here also runs alone, with -k)."""
    hall.truth.update(_simulate(hall.input_dir, runs=3, chunks=50, start_run=6000))
    # An ignored plot type is skipped: it must never produce a row.
    (hall.input_dir / "RunPeriod-2026-01" / "Run6000").mkdir(parents=True, exist_ok=True)
    shutil.copy(
        next(hall.input_dir.rglob("*.png")),
        hall.input_dir / "RunPeriod-2026-01" / "Run6000" / f"{IGNORED}.png",
    )
    _wait_rows(hall.url, len(hall.truth))


def test_every_image_gets_exactly_one_verdict(hall: Hall) -> None:
    expected = len(hall.truth)
    assert expected == 300
    assert _wait_rows(hall.url, expected) == expected
    time.sleep(3)  # anything extra (a duplicate) would show up now
    rows = _rows(hall.url)
    paths = [r[0] for r in rows]
    assert len(paths) == expected
    assert len(set(paths)) == expected
    assert set(paths) == set(hall.truth)


def test_verdicts_are_right_for_clear_images(hall: Hall) -> None:
    rows = {r[0]: r for r in _rows(hall.url)}
    trained = [p for p in hall.truth if TRAINED in p]
    bad = [p for p in trained if hall.truth[p] == "Bad"]
    good = [p for p in trained if hall.truth[p] == "Good"]
    assert len(bad) >= 10 and len(good) >= 50
    seen = Counter((hall.truth[p], rows[p][1]) for p in trained)
    bad_right = sum(rows[p][1] == "Bad" for p in bad) / len(bad)
    good_right = sum(rows[p][1] == "Good" for p in good) / len(good)
    assert bad_right >= 0.9, f"Bad recognised {bad_right:.2f}: {seen}"
    assert good_right >= 0.9, f"Good recognised {good_right:.2f}: {seen}"
    untrained = [rows[p][1] for p in hall.truth if UNTRAINED in p]
    assert set(untrained) == {"NoModel"}


def test_heat_maps_and_collection_policy(hall: Hall) -> None:
    storage = hall.data_dir / "storage"
    for path, verdict, confirmed, plot_id, reason, heatmap, image, plot_type in _rows(hall.url):
        if plot_type == TRAINED:
            must_keep = verdict == "Bad" or not confirmed
            # collect_percent is 0 for the trained plot type: only Bad and unconfirmed kept.
            assert (plot_id is not None) == must_keep, (path, verdict, confirmed, reason)
            if verdict == "Bad" and confirmed:
                assert reason == "bad"
            if verdict == "Bad":
                assert heatmap and (storage / heatmap).is_file(), path
        else:
            assert verdict == "NoModel"
            assert plot_id is not None and reason == "unbiased"  # collect_percent 100
        if plot_id is not None:
            assert (storage / image).is_file()


def test_api_shows_runtime(hall: Hall) -> None:
    port = hall.stack.ports.api
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runtime?limit=50") as resp:
        body = json.load(resp)
    items = {i["plot_type"]: i for i in body["items"]}
    assert {TRAINED, UNTRAINED} <= set(items)
    for key in (
        "plot_type",
        "run_number",
        "chunk",
        "verdict",
        "confidence",
        "confirmed",
        "model_id",
        "time",
    ):
        assert key in items[TRAINED]
    assert items[UNTRAINED]["verdict"] == "NoModel"
    assert items[TRAINED]["model_id"] is not None


def test_status_page_shows_every_service_and_the_queue(hall: Hall) -> None:
    port = hall.stack.ports.api
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?hours=1") as resp:
        body = json.load(resp)
    services = {s["service"]: s for s in body["services"]}
    # The keeper's heartbeat from the database; the others' figures from their /metrics.
    assert {"keeper", "feeder", "balancer", "predictor", "modelserver"} <= set(services)
    assert all(s["alive"] for s in services.values()), services
    balancer = services["balancer"]["details"]
    assert balancer["queue_depth"] >= 0 and balancer["predictors_connected"] >= 1
    assert balancer["orders_done"] >= 300
    assert services["modelserver"]["details"]["models_loaded"] >= 1


def test_no_duplicate_after_feeder_restart_and_replayed_report(hall: Hall) -> None:
    before = sql_rows(hall.url, "SELECT COUNT(*) FROM run_history")[0][0]
    hall.stack.kill("feeder")  # SIGKILL; the supervisor would restart it, do it by hand
    hall.stack.release("feeder")
    extra = _simulate(hall.input_dir, runs=1, chunks=10, start_run=7000)
    hall.truth.update(extra)
    assert _wait_rows(hall.url, before + len(extra)) == before + len(extra)
    time.sleep(3)
    assert sql_rows(hall.url, "SELECT COUNT(*) FROM run_history")[0][0] == before + len(extra)
    # Replay one recorded report straight to the keeper: acknowledged, nothing changes.
    order_id = sql_rows(hall.url, "SELECT order_id FROM run_history LIMIT 1")[0][0]
    asyncio.run(_replay(hall.stack.ports.keeper, order_id))
    assert sql_rows(hall.url, "SELECT COUNT(*) FROM run_history")[0][0] == before + len(extra)


async def _replay(port: int, order_id: str) -> None:
    from hydra.v1 import keeper_pb2, keeper_pb2_grpc, order_pb2, report_pb2

    from hydra_common.grpcserver import channel

    report = report_pb2.Report(
        order=order_pb2.InferenceOrder(order_id=order_id, plot_type=TRAINED, run_number=1),
        status=report_pb2.REPORT_STATUS_NO_MODEL,
    )
    async with channel(f"127.0.0.1:{port}") as ch:
        stub = keeper_pb2_grpc.KeeperServiceStub(ch)
        call = stub.Record()
        await call.write(keeper_pb2.RecordRequest(reports=[report]))
        ack = await asyncio.wait_for(call.read(), 30)
        await call.done_writing()
        assert list(ack.order_ids) == [order_id]


def test_services_survive_and_logs_are_structured(hall: Hall) -> None:
    for service, proc in hall.stack.procs.items():
        assert proc.poll() is None, f"{service} died; see {hall.data_dir}/logs/{service}.log"
    assert os.path.getsize(hall.data_dir / "logs" / "keeper.log") > 0


def test_a_plot_type_with_its_own_labels_serves_them(hall: Hall) -> None:
    """Labels no one defined before: added, imported, trained and promoted with the CLI
    alone (the module's set-up), then live verdicts carry them in ``/api/inferences``."""
    from hydra_trainer.simulate import SimulationConfig, run_simulation

    before = sql_rows(hall.url, "SELECT COUNT(*) FROM run_history")[0][0]
    truth: dict[str, str] = {}
    cfg = SimulationConfig(
        out_dir=hall.input_dir,
        plot_types=[_custom_spec()],
        bad_fraction=0.5,
        runs=1,
        chunks_per_run=12,
        start_run=7100,
        seed=7100,
        truth=False,
        interval=0.0,
    )
    run_simulation(
        cfg,
        on_image=lambda path, t: truth.__setitem__(path.name, CUSTOM_LABELS[t.label]),
        sleep=lambda _s: None,
    )
    assert _wait_rows(hall.url, before + len(truth)) >= before + len(truth)
    port = hall.stack.ports.api
    url = f"http://127.0.0.1:{port}/api/inferences?plot_type={CUSTOM}&limit=100"
    with urllib.request.urlopen(url) as resp:
        items = json.loads(resp.read())["items"]
    assert len(items) == len(truth)
    hall_labels = set(CUSTOM_LABELS.values())
    assert {i["verdict"] for i in items} <= hall_labels
    assert all(set(i["weights"]) == hall_labels for i in items)
    # The model learnt the hall's labels: most verdicts match what was drawn.
    drawn = sql_rows(
        hall.url,
        "SELECT rh.source_path, rh.verdict FROM run_history rh"
        " JOIN plot_types pt ON pt.id = rh.plot_type_id WHERE pt.name = :name",
        name=CUSTOM,
    )
    assert len(drawn) == len(truth)
    right = sum(verdict == truth[Path(source).name] for source, verdict in drawn)
    assert right > len(truth) / 2, drawn
    # Its alarm label is an alarm: a confirmed Dead_ring is in the monitoring log as one.
    dead = CUSTOM_LABELS["Bad"]
    alarms = sql_rows(
        hall.url,
        "SELECT COUNT(*) FROM monitoring_log ml JOIN run_history rh ON rh.id = ml.run_history_id"
        " JOIN plot_types pt ON pt.id = rh.plot_type_id"
        " WHERE pt.name = :name AND rh.verdict = :dead AND ml.alarm",
        name=CUSTOM,
        dead=dead,
    )[0][0]
    confirmed_dead = sum(1 for i in items if i["verdict"] == dead and i["confirmed"])
    assert alarms == confirmed_dead


def _listening(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.rsplit(":", 1)
                if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def test_every_service_listens_on_loopback_only(hall: Hall) -> None:
    """gRPC has no authentication: a local stack must not be reachable from the network."""
    ports = hall.stack.ports
    every = {
        "balancer": ports.balancer,
        "keeper": ports.keeper,
        "modelserver": ports.modelserver,
        "api": ports.api,
        **{f"{name} metrics": port for name, port in ports.metrics.items()},
    }
    # 127.0.0.1, ::1, and ::ffff:127.0.0.1 (gRPC's IPv4-mapped form)
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    for name, port in every.items():
        addresses = _listening(port)
        assert addresses, f"{name} is not listening on {port}"
        assert addresses <= loopback, f"{name} on {port} listens on {addresses}"
