"""Whole-pipeline efficiency: images/s through every service ÷ the model's forward pass alone.

    python -m bench.pipeline_bench            # full counts (about 3 minutes on 2 cores)
    python -m bench.pipeline_bench --quick    # smoke test: small counts

One run starts a real ``LocalStack`` (feeder, balancer, predictor, the bundled TF Serving API
model server, keeper and API as supervised local processes, as ``hydra up`` runs them) on a
fresh **MariaDB** database (the production backend; the keeper's group commit and the
feeder's ledger write to it), and measures in the same run, on the same machine:

``pipeline_efficiency_small``
    PNG files renamed into the input directory at once → every verdict committed in
    ``run_history``, as images/s, divided by the images/s of the *same* exported SavedModel
    loaded in-process with TensorFlow, its ``serving_default`` signature called on the same
    encoded images in batches of the predictor's ``HYDRA_MAX_BATCH`` (32). The trainer's
    ``small`` architecture, untrained (throughput is the point), at its default input size.
``pipeline_efficiency_inceptionv3``
    The same with the ``inceptionv3`` architecture (299 x 299).
``cpu_ms_per_image_overhead``
    CPU time (user+sys, psutil) of the feeder, balancer, predictor and keeper processes per
    image during the small-model run; the model server, the API and MariaDB are not counted.
``burst_568_extra_s``
    568 images, one per ePIC plot type (``hall_catalog("epic")``), land at once; seconds until
    the API's Run-page endpoint (``GET /api/runtime``) shows every one of them, minus the
    model-only time of those 568 images (forward pass alone, in-process, batches of 32).

The hall: the 568 ePIC plot types all have one exported small model as their active model
(one ``models`` row that every plot type's ``active_model_id`` points at), so the predictor
batches across plot types; six demo plot types have the inceptionv3 model. An untrained model
gives near-uniform weights; its labels are ordered so that its top output is Good and every
label has a threshold of 0.2 (a hall in steady state: mostly confirmed Good, so no Grad-CAM
``explain`` calls and only the plot types' 1 % sample kept). The supporting figures record
the verdicts actually seen (``*_alarm_fraction``) and the batch sizes the predictor used.

Settings: every service runs with its defaults except ``HYDRA_STABLE_SECONDS=0.2`` (the
feeder's wait for a file to hold still; the default 1 s is a guard for monitoring that writes
files slowly over NFS, here every file appears complete at once by a rename) — the fault
drill uses the same value. Files are staged before a pass and renamed into the input
directory with a fresh mtime, so the feeder waits those 0.2 s as it would for new plots.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import io
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import sqlalchemy as sa

from bench.drill import Db, scrape
from hydra_common.launcher import LocalStack, Ports, stack_environment
from hydra_common.testing import create_mysql_database, drop_mysql_database

log = logging.getLogger("bench.pipeline")

OVERHEAD_SERVICES = ("feeder", "balancer", "predictor", "keeper")
ALL_SERVICES = (*OVERHEAD_SERVICES, "modelserver", "api")
RUN_PERIOD = "2026-02"
MAX_BATCH = 32  # the predictor's HYDRA_MAX_BATCH default, used by the in-process baseline
THRESHOLD = 0.2  # below 1/3: every top weight of a 3-label model clears it (confirmed)
ADMIN_PASSWORD = "pipeline-bench-admin"
# The untrained models' (fixed seed) top output sits at this position for simulated plots;
# Good goes there, so the hall looks like one in steady state. Checked in every run.
LABELS = {
    "small": ("NoData", "Bad", "Good"),
    "inceptionv3": ("NoData", "Good", "Bad"),
}
INCEPTION_TYPES = ("ECAL_adcOccupancy", "FTOF_adcTime_s1", "DC_tdc1d_s1", "RF_time")


@dataclass(frozen=True)
class Counts:
    """How many images each part uses."""

    small: int
    baseline_small: int
    inception: int
    burst: int = 568

    @classmethod
    def of(cls, quick: bool) -> Counts:
        """Smoke-test counts, or counts that keep ``measure()`` within about 3-4 minutes."""
        if quick:
            return cls(small=256, baseline_small=128, inception=32)
        return cls(small=2000, baseline_small=512, inception=256)


# --- models, the hall and the images ---------------------------------------------------


def export_model(arch_name: str, model_root: Path, name: str) -> Path:
    """Export an untrained ``arch_name`` model (fixed seed) at the architecture's input size."""
    import keras

    from hydra_trainer.architectures import get_architecture
    from hydra_trainer.export import export_model as export

    arch = get_architecture(arch_name)
    keras.utils.set_random_seed(0)
    model = arch.build((*arch.input_size, 3), len(LABELS[arch_name]))
    return export(model, model_root, name, 1, LABELS[arch_name], architecture=arch)


def prepare_hall(url: str, small_dir: Path, inception_dir: Path) -> dict[str, int]:
    """The 568 ePIC plot types on one small model, the inception plot types on the other."""
    from hydra_common.db import schema as s
    from hydra_common.db.engine import make_engine, make_sessionmaker
    from hydra_trainer.catalog import find_spec, hall_catalog
    from hydra_trainer.store import add_plot_type

    async def run() -> dict[str, int]:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session, session.begin():
                rows = await session.execute(sa.select(s.Classification.name, s.Classification.id))
                labels = {name: id_ for name, id_ in rows}
                groups = {
                    "small": hall_catalog("epic"),
                    "inceptionv3": [find_spec(n, "demo") for n in INCEPTION_TYPES],
                }
                ids: dict[str, int] = {}
                for arch, specs in groups.items():
                    types = [
                        await add_plot_type(session, spec.name, spec.labels, detector=spec.detector)
                        for spec in specs
                    ]
                    await session.flush()
                    version_dir = small_dir if arch == "small" else inception_dir
                    model = s.Model(
                        plot_type_id=types[0].id,
                        name=version_dir.parent.name,
                        version=1,
                        architecture=arch,
                        location=str(version_dir),
                        input_height=_input_size(arch)[0],
                        input_width=_input_size(arch)[1],
                        label_order=list(LABELS[arch]),
                        status=s.ModelStatus.ACTIVE,
                        trained_by="pipeline-bench",
                    )
                    session.add(model)
                    await session.flush()
                    for label in LABELS[arch]:
                        session.add(
                            s.Threshold(
                                model_id=model.id,
                                classification_id=labels[label],
                                threshold=THRESHOLD,
                                method="manual",
                                set_by="pipeline-bench",
                            )
                        )
                    for pt in types:
                        pt.active_model_id = model.id
                    ids[arch] = int(model.id)
                return ids
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _input_size(arch_name: str) -> tuple[int, int]:
    from hydra_trainer.architectures import get_architecture

    return get_architecture(arch_name).input_size


def render_images(names: Sequence[str], seed: int = 0) -> dict[str, bytes]:
    """One simulated PNG (a Good plot) per plot type, encoded as the monitoring writes it."""
    from hydra_trainer.catalog import find_spec
    from hydra_trainer.plots import make_plot

    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        image, _truth = make_plot(find_spec(name), "Good", rng)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        out[name] = buf.getvalue()
    return out


@dataclass
class Batch:
    """Images staged outside the input dir, to be renamed into it at once."""

    run_number: int
    files: list[tuple[Path, Path]]  # (staged, target)
    images: list[bytes]  # the same images in order (for the in-process baseline)

    def __len__(self) -> int:
        return len(self.files)


def stage(
    data_dir: Path,
    input_dir: Path,
    run_number: int,
    images: dict[str, bytes],
    count: int,
    chunked: bool = True,
) -> Batch:
    """``count`` files cycling over the plot types (chunk = round), written to a staging dir.

    The run's directory is created in the input dir now, so the feeder's inotify watch is on
    it before the files arrive (as a hall creates a run's directory when the run starts).
    """
    names = list(images)
    staging = data_dir / "staging" / str(run_number)
    staging.mkdir(parents=True)
    run_dir = input_dir / f"RunPeriod-{RUN_PERIOD}" / f"Run{run_number}"
    run_dir.mkdir(parents=True)
    files, payload = [], []
    for i in range(count):
        name = names[i % len(names)]
        base = f"{name}_{i // len(names):04d}" if chunked else name
        staged = staging / f"{base}.png"
        staged.write_bytes(images[name])
        files.append((staged, run_dir / staged.name))
        payload.append(images[name])
    return Batch(run_number, files, payload)


def land(batch: Batch) -> float:
    """Rename every staged file into the input dir; returns the wall-clock time it began."""
    started = time.time()
    for staged, target in batch.files:
        # Fresh as if just written: the feeder must not take the staged files' old mtime as
        # proof that they are complete (it reads a long-untouched file at once).
        os.utime(staged)
        os.rename(staged, target)
    return started


# --- the model alone --------------------------------------------------------------------


class ForwardPass:
    """The exported SavedModel in this process, its ``serving_default`` signature."""

    def __init__(self, version_dir: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self._handle = tf.saved_model.load(str(version_dir))
        self._fn = self._handle.signatures["serving_default"]

    def weights(self, images: Sequence[bytes]) -> np.ndarray:
        """The weights of every image, in batches of ``MAX_BATCH``."""
        out = [
            self._fn(image=self._tf.constant(list(images[i : i + MAX_BATCH])))["weights"].numpy()
            for i in range(0, len(images), MAX_BATCH)
        ]
        return np.concatenate(out)

    def seconds(self, images: Sequence[bytes], repeats: int = 2) -> float:
        """Best wall time over ``repeats`` passes over the images."""
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            self.weights(images)
            best = min(best, time.perf_counter() - started)
        return best


def alarm_fraction(weights: np.ndarray, labels: Sequence[str]) -> float:
    """The share of images whose top label is Bad (they would go through ``explain`` too)."""
    return float(np.mean([labels[int(i)] == "Bad" for i in weights.argmax(axis=1)]))


# --- the stack ----------------------------------------------------------------------------


@contextmanager
def hall(keep: bool = False) -> Iterator[tuple[str, Path]]:
    """A fresh MariaDB database and data directory, removed afterwards."""
    url = create_mysql_database("hydra_pipebench")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-pipebench-"))
    try:
        yield url, data_dir
    finally:
        if keep:
            log.warning("kept database %s and data dir %s", url, data_dir)
        else:
            drop_mysql_database(url)
            shutil.rmtree(data_dir, ignore_errors=True)


def start(url: str, data_dir: Path, input_dir: Path, extra_env: dict[str, str]) -> LocalStack:
    """Start every service with its defaults (and the few settings the docstring names)."""
    ports = Ports.free()
    env = stack_environment(ports)
    env.update(
        HYDRA_DATABASE_URL=url,
        HYDRA_DATA_DIR=str(data_dir),
        HYDRA_INPUT_DIR=str(input_dir),
        HYDRA_STABLE_SECONDS="0.2",
        HYDRA_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HYDRA_FEEDER_ID="pipeline-bench",
    )
    env.update(extra_env)
    stack = LocalStack(env, ports, data_dir / "logs")
    try:
        stack.start(wait=300)
        stack.wait_ready(timeout=300)
    except Exception:
        stack.stop(5)
        raise
    return stack


def wait_for(what: str, check: Any, timeout: float, period: float = 0.2) -> None:
    """Poll ``check()`` until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        time.sleep(period)


class Api:
    """A logged-in client of the stack's REST API."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        self._open = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)).open
        body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
        req = urllib.request.Request(
            f"{self.base}/api/auth/login", body, {"Content-Type": "application/json"}
        )
        with self._open(req, timeout=10) as resp:
            resp.read()

    def runtime(self) -> list[dict[str, Any]]:
        """The Run page's cards: the latest verdict of every plot type."""
        with self._open(f"{self.base}/api/runtime", timeout=10) as resp:
            items: list[dict[str, Any]] = json.loads(resp.read())["items"]
            return items


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """User+sys CPU seconds of each service process so far."""
    out = {}
    for service in ALL_SERVICES:
        t = psutil.Process(stack.procs[service].pid).cpu_times()
        out[service] = t.user + t.system
    return out


def histogram(port: int, name: str) -> tuple[float, float]:
    """(sum, count) of an unlabelled histogram on a ``/metrics`` endpoint."""
    return scrape(port, f"{name}_sum") or 0.0, scrape(port, f"{name}_count") or 0.0


# --- one pass of images through the pipeline ----------------------------------------------


@dataclass
class Pass:
    """What one batch of images did in the pipeline."""

    images: int
    seconds: float  # landing → the last verdict committed
    steady_images_per_s: float  # between the 10th and 90th percentile commits
    mean_batch: float  # images per Predict call
    mean_commit: float  # reports per keeper transaction
    cpu: dict[str, float]  # CPU seconds per service during the pass
    verdicts: dict[str, int]

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


class Pipeline:
    """The running stack, the database, and how to push a batch through."""

    def __init__(self, stack: LocalStack, db: Db) -> None:
        self.stack = stack
        self.db = db

    def committed(self, run_number: int) -> int:
        return int(
            self.db.scalar("SELECT COUNT(*) FROM run_history WHERE run_number = :r", r=run_number)
        )

    def run(self, batch: Batch, timeout: float) -> Pass:
        """Land a batch, wait for every verdict, and return what it took."""
        port = self.stack.ports.metrics["predictor"]
        keeper = self.stack.ports.metrics["keeper"]
        batch_sum, batch_count = histogram(port, "hydra_predictor_batch_size")
        commit_sum, commit_count = histogram(keeper, "hydra_keeper_commit_batch_size")
        cpu_before = cpu_seconds(self.stack)
        t0 = land(batch)
        wait_for(
            f"verdicts of run {batch.run_number}",
            lambda: self.committed(batch.run_number) >= len(batch),
            timeout,
            period=0.1,
        )
        cpu_after = cpu_seconds(self.stack)
        batch_sum2, batch_count2 = histogram(port, "hydra_predictor_batch_size")
        commit_sum2, commit_count2 = histogram(keeper, "hydra_keeper_commit_batch_size")
        times = sorted(
            _epoch(row[0])
            for row in self.db.rows(
                "SELECT created_at FROM run_history WHERE run_number = :r", r=batch.run_number
            )
        )
        lo, hi = int(0.1 * len(times)), int(0.9 * len(times)) - 1
        steady = (hi - lo) / (times[hi] - times[lo]) if times[hi] > times[lo] else float("nan")
        verdicts = {
            f"{verdict}{'' if confirmed else ' (unconfirmed)'}": int(n)
            for verdict, confirmed, n in self.db.rows(
                "SELECT verdict, confirmed, COUNT(*) FROM run_history WHERE run_number = :r"
                " GROUP BY verdict, confirmed",
                r=batch.run_number,
            )
        }
        calls = batch_count2 - batch_count
        commits = commit_count2 - commit_count
        return Pass(
            images=len(batch),
            seconds=times[-1] - t0,
            steady_images_per_s=steady,
            mean_batch=(batch_sum2 - batch_sum) / calls if calls else float("nan"),
            mean_commit=(commit_sum2 - commit_sum) / commits if commits else float("nan"),
            cpu={s: cpu_after[s] - cpu_before[s] for s in ALL_SERVICES},
            verdicts=verdicts,
        )

    def burst(self, batch: Batch, api: Api, timeout: float) -> float:
        """Land one image per plot type; seconds until the API shows every one of them."""
        names = {target.stem for _staged, target in batch.files}
        t0 = time.monotonic()
        land(batch)
        # MariaDB first (a cheap count), then the API itself must show all of them.
        wait_for(
            "the burst's verdicts",
            lambda: self.committed(batch.run_number) >= len(batch),
            timeout,
            period=0.02,
        )

        def shown() -> bool:
            seen = {
                item["plot_type"]
                for item in api.runtime()
                if item["run_number"] == batch.run_number
            }
            return names <= seen

        wait_for("the burst on the Run page", shown, timeout, period=0.02)
        return time.monotonic() - t0


def _epoch(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --- the measurement ------------------------------------------------------------------------


def measure(quick: bool = False, keep: bool = False) -> dict[str, float]:
    """Run the whole benchmark once and return its figures (see the module docstring)."""
    from hydra_trainer.catalog import hall_catalog

    counts = Counts.of(quick)
    started = time.monotonic()
    figures: dict[str, float] = {"quick": float(quick), "max_batch": float(MAX_BATCH)}
    with hall(keep) as (url, data_dir):
        model_root = data_dir / "models"
        input_dir = data_dir / "input"
        input_dir.mkdir()
        t = time.monotonic()
        small_dir = export_model("small", model_root, "bench_small")
        inception_dir = export_model("inceptionv3", model_root, "bench_inceptionv3")
        figures["export_s"] = time.monotonic() - t
        prepare_hall(url, small_dir, inception_dir)
        epic = render_images([spec.name for spec in hall_catalog("epic")])
        inception_images = render_images(INCEPTION_TYPES, seed=1)
        warm_small = stage(data_dir, input_dir, 1000, epic, 2 * MAX_BATCH)
        warm_inception = stage(data_dir, input_dir, 1001, inception_images, 4)
        small = stage(data_dir, input_dir, 2000, epic, counts.small)
        burst = stage(data_dir, input_dir, 3000, epic, counts.burst, chunked=False)
        inception = stage(data_dir, input_dir, 4000, inception_images, counts.inception)

        t = time.monotonic()
        stack = start(url, data_dir, input_dir, {})
        db = Db(url)
        try:
            figures["stack_start_s"] = time.monotonic() - t
            ms_port = stack.ports.metrics["modelserver"]
            wait_for(
                "models loaded",
                lambda: scrape(ms_port, "hydra_modelserver_models_loaded") == 2,
                120,
            )
            pipeline = Pipeline(stack, db)
            api = Api(stack.ports.api)
            # Warm-up: channels open, first calls of each signature traced and run.
            pipeline.run(warm_small, 120)
            pipeline.run(warm_inception, 120)

            _small(figures, pipeline, small, small_dir, counts.baseline_small)
            _burst(figures, pipeline, burst, small_dir, api)
            _inception(figures, pipeline, inception, inception_dir)
            figures["restarts"] = float(sum(stack.restarts.values()))
        finally:
            stack.stop(15)
            db.close()
    figures["elapsed_s"] = time.monotonic() - started
    return {k: round(v, 4) for k, v in figures.items()}


def _small(
    figures: dict[str, float], pipeline: Pipeline, batch: Batch, version_dir: Path, baseline: int
) -> None:
    model = ForwardPass(version_dir)
    labels = LABELS["small"]
    sample = batch.images[:baseline]
    model.weights(sample[:MAX_BATCH])  # warm
    before_s = model.seconds(sample)
    figures["small_alarm_fraction"] = alarm_fraction(
        model.weights(batch.images[: MAX_BATCH * 4]), labels
    )
    done = pipeline.run(batch, 300)
    base_s = min(before_s, model.seconds(sample))  # before and after, as for inceptionv3
    figures["small_model_images_per_s"] = len(sample) / base_s
    figures["small_baseline_images"] = float(len(sample))
    figures["small_images"] = float(done.images)
    figures["small_pipeline_s"] = done.seconds
    figures["small_pipeline_images_per_s"] = done.images_per_s
    figures["small_pipeline_steady_images_per_s"] = done.steady_images_per_s
    figures["small_mean_batch"] = done.mean_batch
    figures["small_mean_commit"] = done.mean_commit
    figures["pipeline_efficiency_small"] = done.images_per_s / figures["small_model_images_per_s"]
    overhead = sum(done.cpu[s] for s in OVERHEAD_SERVICES)
    figures["cpu_ms_per_image_overhead"] = 1000 * overhead / done.images
    for service, seconds in done.cpu.items():
        figures[f"cpu_ms_per_image_{service}"] = 1000 * seconds / done.images
    figures["small_confirmed_fraction"] = (
        sum(n for k, n in done.verdicts.items() if "unconfirmed" not in k) / done.images
    )


def _burst(
    figures: dict[str, float], pipeline: Pipeline, batch: Batch, version_dir: Path, api: Api
) -> None:
    model = ForwardPass(version_dir)
    model.weights(batch.images[:MAX_BATCH])
    model_s = model.seconds(batch.images)
    shown_s = pipeline.burst(batch, api, 120)
    figures["burst_images"] = float(len(batch))
    figures["burst_model_only_s"] = model_s
    figures["burst_shown_s"] = shown_s
    figures["burst_568_extra_s"] = shown_s - model_s


def _inception(
    figures: dict[str, float], pipeline: Pipeline, batch: Batch, version_dir: Path
) -> None:
    model = ForwardPass(version_dir)
    weights = model.weights(batch.images[:MAX_BATCH])  # warm
    figures["inceptionv3_alarm_fraction"] = alarm_fraction(weights, LABELS["inceptionv3"])
    before_s = model.seconds(batch.images, repeats=1)
    done = pipeline.run(batch, 300)
    # The model alone before and after the pipeline pass; the faster counts (a busy
    # neighbour during one of them must not flatter the pipeline).
    base_s = min(before_s, model.seconds(batch.images, repeats=1))
    figures["inceptionv3_model_images_per_s"] = len(batch) / base_s
    figures["inceptionv3_images"] = float(done.images)
    figures["inceptionv3_pipeline_s"] = done.seconds
    figures["inceptionv3_pipeline_images_per_s"] = done.images_per_s
    figures["inceptionv3_mean_batch"] = done.mean_batch
    figures["pipeline_efficiency_inceptionv3"] = (
        done.images_per_s / figures["inceptionv3_model_images_per_s"]
    )


def main() -> None:
    """Measure, print the figures and write bench/results/pipeline.json."""
    from bench.results import record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument("--no-record", dest="record", action="store_false")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    figures = measure(quick=args.quick, keep=args.keep)
    print(json.dumps(figures, indent=2, sort_keys=True))
    if args.record:
        print(f"figures written to {record('pipeline', figures)}")


if __name__ == "__main__":
    main()
