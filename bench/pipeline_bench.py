"""Whole-pipeline efficiency in production shape: images/s through every service ÷ the models alone.

    python -m bench.pipeline_bench            # full counts (about 5 minutes on 2 cores)
    python -m bench.pipeline_bench --quick    # smoke test: small counts, one round

One run starts a real ``LocalStack`` (feeder, balancer, predictor, the bundled TF Serving API
model server, keeper and API as supervised local processes, as ``hydra up`` runs them) with
**every setting at its default** (the feeder's 1 s stability window, 64-order messages and
2,000-order window, the predictor's 64 credits and batches of 32, the keeper's group commit)
on a fresh **MariaDB** database (durable commits), and measures in the same run, on the same
machine, ``REPEATS`` rounds (each figure is the median, with its spread):

The hall
    The 568 ePIC plot types (``hall_catalog("epic")``) on **51 small-CNN models** (one per
    about 11 plot types, so the predictor batches per model as in a hall); 20 more plot
    types (drawn like the first 20 ePIC ones, named ``<name>_v3``) on **2 InceptionV3
    models** (``pipeline_inceptionv3_models`` records it: InceptionV3 loads take ~10 s each
    on 2 busy cores). Images are the simulator's PNGs (about 4 KiB). An untrained model gives
    near-uniform weights with its top output at a fixed position for simulated plots; a
    model's label order puts Good there, except for the models of 5 % of the plot types,
    which put Bad there: so 5 % of the verdicts are confirmed Bad, and those images take the
    predictor's ``explain`` call (Grad-CAM), are kept (fsynced) with their heat maps and go
    to the monitoring log, as in a hall. The plot types keep their 1 % unbiased sample.
    Models of one architecture share weights (exported once, copied as separate models):
    the model server loads and batches each on its own.

``pipeline_efficiency_small``
    PNG files renamed into the input directory at once → every verdict committed in
    ``run_history``, as images/s, the feeder's stability window (a fixed wait of every file,
    not throughput) taken out, divided by the images/s of the *same* models run in-process
    with TensorFlow on the same images: each model's images in batches of the predictor's
    ``HYDRA_MAX_BATCH`` (32) through ``serving_default``, and its Bad images through
    ``explain``, as the predictor asks.
``pipeline_efficiency_inceptionv3``
    The same with the InceptionV3 plot types (299 x 299).
``cpu_ms_per_image_overhead``
    CPU time (user+sys, psutil) per image during the small-model pass of the feeder,
    balancer, predictor, keeper, API and MariaDB processes, plus the model server's CPU
    beyond the TensorFlow work (the model server's CPU minus the in-process models' CPU on
    the same images). MariaDB is the shared server: a neighbour's queries count against us.
``burst_568_extra_s``
    568 images, one per ePIC plot type, land at once; seconds until the API's Run-page
    endpoint (``GET /api/runtime``) shows every one of them, minus the stability window,
    minus the models-only time of those 568 images.
``idle_cpu_ms_per_image``
    One image a second for ``IDLE_SECONDS``, as ``REPEATS`` consecutive passes (20 s each):
    CPU of every process (the services, the model server whole, MariaDB) ÷ images, the
    median of the passes with its spread. Each pass has the hall's 5 % Bad share
    (``trickle_images``).

Files are staged before a pass and renamed into the input directory with a fresh mtime, so
the feeder waits its stability window as it would for new plots.
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

from bench.results import median_spread
from hydra_common.launcher import LocalStack, Ports, stack_environment
from hydra_testsupport.harness import Db, scrape
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

log = logging.getLogger("bench.pipeline")

SERVICES = ("feeder", "balancer", "predictor", "keeper", "api")
ALL_SERVICES = (*SERVICES, "modelserver")
RUN_PERIOD = "2026-02"
MAX_BATCH = 32  # the predictor's HYDRA_MAX_BATCH default, used by the in-process baseline
STABLE_SECONDS = 1.0  # the feeder's HYDRA_STABLE_SECONDS default (not overridden here)
THRESHOLD = 0.2  # below 1/3: every top weight of a 3-label model clears it (confirmed)
ADMIN_PASSWORD = "pipeline-bench-admin"
REPEATS = 3
IDLE_SECONDS = 60
BAD_SHARE = 0.05
SMALL_MODELS = 51  # 50 Good-top models and 1 Bad-top model for the first 5 % of plot types
INCEPTION_MODELS = 2  # InceptionV3 loads take ~10 s each on 2 busy cores
INCEPTION_TYPES = 20
# The untrained models' (fixed seed) top output sits at this position for simulated plots;
# Good (or, for the Bad-top models, Bad) goes there. Checked in every run.
TOP = {"small": 2, "inceptionv3": 1}
OTHERS = ("NoData", "Bad", "Good")


def label_order(arch: str, top: str) -> tuple[str, ...]:
    """The model's labels with ``top`` at the position of the untrained model's top output."""
    rest = [label for label in OTHERS if label != top]
    rest.insert(TOP[arch], top)
    return tuple(rest)


@dataclass(frozen=True)
class Counts:
    """How many images each part uses (per round)."""

    small: int
    inception: int
    repeats: int
    idle_seconds: int
    burst: int = 568

    @classmethod
    def of(cls, quick: bool) -> Counts:
        """Smoke-test counts, or counts that keep ``measure()`` within about 5 minutes."""
        if quick:
            return cls(small=568, inception=20, repeats=1, idle_seconds=10)
        return cls(small=3 * 568, inception=INCEPTION_TYPES, repeats=REPEATS, idle_seconds=60)


# --- models, the hall and the images ---------------------------------------------------


@dataclass
class HallModel:
    """One model of the hall: its name, architecture, labels and plot types."""

    name: str
    arch: str
    labels: tuple[str, ...]
    plot_types: list[Any]  # PlotSpec, with the plot type's name in the hall
    names: list[str]

    @property
    def bad_top(self) -> bool:
        return self.labels[TOP[self.arch]] == "Bad"


def export_model(arch_name: str, model_root: Path, name: str, labels: Sequence[str]) -> Path:
    """Export an untrained ``arch_name`` model (fixed seed) at the architecture's input size."""
    import keras

    from hydra_trainer.architectures import get_architecture
    from hydra_trainer.export import export_model as export

    arch = get_architecture(arch_name)
    keras.utils.set_random_seed(0)
    model = arch.build((*arch.input_size, 3), len(labels))
    return export(model, model_root, name, 1, labels, architecture=arch)


def clone_model(source: Path, model_root: Path, name: str, labels: Sequence[str]) -> Path:
    """A copy of an exported version as another model (its own name and label order)."""
    from hydra_trainer.export import METADATA_FILE

    target = model_root / name / source.name
    shutil.copytree(source, target)
    meta_file = target / METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta.update(name=name, labels=list(labels))
    meta_file.write_text(json.dumps(meta, indent=2))
    return target


def hall_models() -> list[HallModel]:
    """The hall's models and their plot types (see the module docstring)."""
    from hydra_trainer.catalog import hall_catalog

    epic = hall_catalog("epic")
    n_bad = round(BAD_SHARE * len(epic))
    models = [HallModel("bench_small_bad", "small", label_order("small", "Bad"), [], [])]
    for i in range(SMALL_MODELS - 1):
        models.append(
            HallModel(f"bench_small_{i:02d}", "small", label_order("small", "Good"), [], [])
        )
    for i, spec in enumerate(epic):
        m = models[0] if i < n_bad else models[1 + i % (SMALL_MODELS - 1)]
        m.plot_types.append(spec)
        m.names.append(spec.name)
    inception = [
        HallModel("bench_v3_bad", "inceptionv3", label_order("inceptionv3", "Bad"), [], [])
    ]
    for i in range(INCEPTION_MODELS - 1):
        inception.append(
            HallModel(f"bench_v3_{i}", "inceptionv3", label_order("inceptionv3", "Good"), [], [])
        )
    n_bad_v3 = round(BAD_SHARE * INCEPTION_TYPES)
    for i, spec in enumerate(epic[:INCEPTION_TYPES]):
        m = inception[0] if i < n_bad_v3 else inception[1 + i % (INCEPTION_MODELS - 1)]
        m.plot_types.append(spec)
        m.names.append(f"{spec.name}_v3")
    return models + inception


CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hydra-bench"


def cached_export(arch: str) -> Path:
    """The untrained ``arch`` model (fixed seed), exported once per TensorFlow version.

    Exporting InceptionV3 takes about a minute on two busy cores; the export is the same
    every time (fixed seed), so it is kept between runs under ``~/.cache/hydra-bench``.
    """
    import tensorflow as tf

    root = CACHE / f"tf-{tf.__version__}"
    version_dir = root / arch / "1"
    if not version_dir.exists():
        export_model(arch, root, arch, label_order(arch, "Good"))
    return version_dir


def export_hall(models: list[HallModel], model_root: Path) -> dict[str, Path]:
    """Every model of the hall, copied from its architecture's export; arch -> that export."""
    sources = {m.arch: cached_export(m.arch) for m in models}
    for m in models:
        clone_model(sources[m.arch], model_root, m.name, m.labels)
    return sources


def prepare_hall(url: str, models: list[HallModel], model_root: Path) -> None:
    """Plot types, models (active) and thresholds in the database."""
    from hydra_common.db import schema as s
    from hydra_common.db.engine import make_engine, make_sessionmaker
    from hydra_trainer.store import add_plot_type

    async def run() -> None:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session, session.begin():
                rows = await session.execute(sa.select(s.Classification.name, s.Classification.id))
                labels = {name: id_ for name, id_ in rows}
                for m in models:
                    types = [
                        await add_plot_type(session, name, spec.labels, detector=spec.detector)
                        for name, spec in zip(m.names, m.plot_types, strict=True)
                    ]
                    await session.flush()
                    height, width = _input_size(m.arch)
                    model = s.Model(
                        plot_type_id=types[0].id,
                        name=m.name,
                        version=1,
                        architecture=m.arch,
                        location=str(model_root / m.name / "1"),
                        input_height=height,
                        input_width=width,
                        label_order=list(m.labels),
                        status=s.ModelStatus.ACTIVE,
                        trained_by="pipeline-bench",
                    )
                    session.add(model)
                    await session.flush()
                    for label in m.labels:
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
        finally:
            await engine.dispose()

    asyncio.run(run())


def _input_size(arch_name: str) -> tuple[int, int]:
    from hydra_trainer.architectures import get_architecture

    return get_architecture(arch_name).input_size


def render_images(models: list[HallModel], seed: int = 0) -> dict[str, bytes]:
    """One simulated PNG (a Good plot) per plot type, as the monitoring writes it."""
    from hydra_trainer.plots import make_plot

    rng = np.random.default_rng(seed)
    out = {}
    for m in models:
        for name, spec in zip(m.names, m.plot_types, strict=True):
            image, _truth = make_plot(spec, "Good", rng)
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            out[name] = buf.getvalue()
    return out


def trickle_images(
    images: dict[str, bytes], bad_types: set[str], count: int, index: int
) -> dict[str, bytes]:
    """``count`` plot types' images for the ``index``-th idle pass, with the hall's Bad share.

    The catalog's first plot types are all on the Bad-top model: the first ``count`` of them
    would make every idle image a confirmed Bad (kept, heat map, log row, alarm). A pass takes
    ``BAD_SHARE`` of its images (at least one) from the Bad-top plot types and the rest from
    the others, each pass its own plot types.
    """
    n_bad = max(1, round(BAD_SHARE * count))
    n_good = count - n_bad
    bad = [n for n in images if n in bad_types][index * n_bad : (index + 1) * n_bad]
    good = [n for n in images if n not in bad_types][index * n_good : (index + 1) * n_good]
    half = n_good // 2
    picked = good[:half] + bad + good[half:]  # the Bad one(s) in the middle, not first
    return {name: images[name] for name in picked}


@dataclass
class Batch:
    """Images staged outside the input dir, to be renamed into it at once."""

    run_number: int
    files: list[tuple[Path, Path]]  # (staged, target)
    names: list[str]  # the plot type of each file, in order
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
    files, kinds, payload = [], [], []
    for i in range(count):
        name = names[i % len(names)]
        base = f"{name}_{i // len(names):04d}" if chunked else name
        staged = staging / f"{base}.png"
        staged.write_bytes(images[name])
        files.append((staged, run_dir / staged.name))
        kinds.append(name)
        payload.append(images[name])
    return Batch(run_number, files, kinds, payload)


def land(batch: Batch, pause: float = 0.0) -> float:
    """Rename every staged file into the input dir; returns the wall-clock time it began.

    ``pause``: seconds between files (a trickle), else all at once.
    """
    started = time.time()
    for i, (staged, target) in enumerate(batch.files):
        if pause:
            delay = started + i * pause - time.time()
            if delay > 0:
                time.sleep(delay)
        # Fresh as if just written: the feeder must not take the staged files' old mtime as
        # proof that they are complete (it reads a long-untouched file at once).
        os.utime(staged)
        os.rename(staged, target)
    return started


# --- the models alone -------------------------------------------------------------------


class ForwardPass:
    """An exported SavedModel in this process: ``serving_default`` and ``explain``."""

    def __init__(self, version_dir: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self._handle = tf.saved_model.load(str(version_dir))
        self._fn = self._handle.signatures["serving_default"]
        self._explain = self._handle.signatures["explain"]

    def weights(self, images: Sequence[bytes]) -> np.ndarray:
        """The weights of every image, in batches of ``MAX_BATCH``."""
        out = [
            self._fn(image=self._tf.constant(list(images[i : i + MAX_BATCH])))["weights"].numpy()
            for i in range(0, len(images), MAX_BATCH)
        ]
        return np.concatenate(out)

    def explain(self, images: Sequence[bytes]) -> None:
        """Grad-CAM of the images, in batches of ``MAX_BATCH`` (as the predictor asks)."""
        for i in range(0, len(images), MAX_BATCH):
            self._explain(image=self._tf.constant(list(images[i : i + MAX_BATCH])))


class ModelsAlone:
    """The hall's models of one architecture run in-process, as the predictor would call them.

    The models of one architecture share weights (clones), so one loaded copy runs every
    model's images: per model, its images in batches, and its alarm images through
    ``explain``; the same computation the model server does for the pipeline.
    """

    def __init__(self, version_dir: Path, models: list[HallModel]) -> None:
        self.model = ForwardPass(version_dir)
        self.model_of = {name: m for m in models for name in m.names}

    def run(self, names: Sequence[str], images: Sequence[bytes]) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) for the images of the plot types."""
        groups: dict[str, list[bytes]] = {}
        bad: dict[str, list[bytes]] = {}
        for name, image in zip(names, images, strict=True):
            m = self.model_of[name]
            groups.setdefault(m.name, []).append(image)
            if m.bad_top:
                bad.setdefault(m.name, []).append(image)
        c0, t0 = time.process_time(), time.perf_counter()
        for group in groups.values():
            self.model.weights(group)
        for group in bad.values():
            self.model.explain(group)
        return time.perf_counter() - t0, time.process_time() - c0

    def top_positions(self, images: Sequence[bytes]) -> set[int]:
        """Where the model's top output sits for these images (must be the one TOP says)."""
        return {int(i) for i in self.model.weights(images).argmax(axis=1)}


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
    """Start every service with its defaults (only where things are and who logs in are set)."""
    ports = Ports.free()
    env = stack_environment(ports)
    env.update(
        HYDRA_DATABASE_URL=url,
        HYDRA_DATA_DIR=str(data_dir),
        HYDRA_INPUT_DIR=str(input_dir),
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


def mariadb() -> psutil.Process | None:
    """The MariaDB server process on this machine (None: not found, e.g. a remote server)."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("mariadbd", "mysqld"):
            return proc
    return None


def cpu_seconds(stack: LocalStack, db_server: psutil.Process | None) -> dict[str, float]:
    """User+sys CPU seconds of each service process and MariaDB so far."""
    out = {}
    procs = {s: psutil.Process(stack.procs[s].pid) for s in ALL_SERVICES}
    if db_server is not None:
        procs["mariadb"] = db_server
    for name, proc in procs.items():
        t = proc.cpu_times()
        out[name] = t.user + t.system
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
        """Throughput, the stability window (a fixed wait of every file) taken out."""
        return self.images / max(1e-3, self.seconds - STABLE_SECONDS)

    @property
    def bad_fraction(self) -> float:
        """The share of confirmed Bad verdicts."""
        return self.verdicts.get("Bad", 0) / self.images


class Pipeline:
    """The running stack, the database, and how to push a batch through."""

    def __init__(self, stack: LocalStack, db: Db) -> None:
        self.stack = stack
        self.db = db
        self.db_server = mariadb()

    def committed(self, run_number: int) -> int:
        return int(
            self.db.scalar("SELECT COUNT(*) FROM run_history WHERE run_number = :r", r=run_number)
        )

    def run(self, batch: Batch, timeout: float, pause: float = 0.0, poll: float = 0.1) -> Pass:
        """Land a batch, wait for every verdict, and return what it took.

        ``poll``: seconds between this process's counts of the committed verdicts (each is a
        query MariaDB's CPU figure counts)."""
        port = self.stack.ports.metrics["predictor"]
        keeper = self.stack.ports.metrics["keeper"]
        batch_sum, batch_count = histogram(port, "hydra_predictor_batch_size")
        commit_sum, commit_count = histogram(keeper, "hydra_keeper_commit_batch_size")
        cpu_before = cpu_seconds(self.stack, self.db_server)
        t0 = land(batch, pause)
        wait_for(
            f"verdicts of run {batch.run_number}",
            lambda: self.committed(batch.run_number) >= len(batch),
            timeout,
            period=poll,
        )
        cpu_after = cpu_seconds(self.stack, self.db_server)
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
            cpu={s: cpu_after[s] - cpu_before[s] for s in cpu_after},
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


def measure(quick: bool = False, keep: bool = False) -> dict[str, Any]:
    """Run the whole benchmark once and return its figures (see the module docstring)."""
    counts = Counts.of(quick)
    started = time.monotonic()
    figures: dict[str, Any] = {"pipeline_quick": quick, "max_batch": MAX_BATCH}
    rounds: dict[str, list[float]] = {}
    models = hall_models()
    small_models = [m for m in models if m.arch == "small"]
    v3_models = [m for m in models if m.arch == "inceptionv3"]
    with hall(keep) as (url, data_dir):
        model_root = data_dir / "models"
        input_dir = data_dir / "input"
        input_dir.mkdir()
        t = time.monotonic()
        sources = export_hall(models, model_root)
        figures["export_s"] = round(time.monotonic() - t, 1)
        prepare_hall(url, models, model_root)
        epic = render_images(small_models)
        v3 = render_images(v3_models, seed=1)
        run_no = iter(range(2000, 9000, 10))
        warm = [stage(data_dir, input_dir, next(run_no), epic, 2 * 568)]
        warm.append(stage(data_dir, input_dir, next(run_no), v3, INCEPTION_TYPES))
        small = [
            stage(data_dir, input_dir, next(run_no), epic, counts.small)
            for _ in range(counts.repeats)
        ]
        burst = [
            stage(data_dir, input_dir, next(run_no), epic, counts.burst, chunked=False)
            for _ in range(counts.repeats)
        ]
        inception = [
            stage(data_dir, input_dir, next(run_no), v3, counts.inception)
            for _ in range(counts.repeats)
        ]
        # The idle minute as REPEATS consecutive passes (a median and a spread, as every
        # figure), one image a second throughout.
        per_pass = counts.idle_seconds // counts.repeats
        bad_types = {name for m in small_models if m.bad_top for name in m.names}
        idle = [
            stage(
                data_dir,
                input_dir,
                next(run_no),
                trickle_images(epic, bad_types, per_pass, i),
                per_pass,
            )
            for i in range(counts.repeats)
        ]

        t = time.monotonic()
        stack = start(url, data_dir, input_dir, {})
        db = Db(url)
        try:
            figures["stack_start_s"] = round(time.monotonic() - t, 1)
            ms_port = stack.ports.metrics["modelserver"]
            wait_for(
                "models loaded",
                lambda: scrape(ms_port, "hydra_modelserver_models_loaded") == len(models),
                300,
                period=1.0,
            )
            figures["models_loaded_s"] = round(time.monotonic() - t, 1)
            pipeline = Pipeline(stack, db)
            api = Api(stack.ports.api)
            # Warm-up: channels open, every model's first calls of each signature traced.
            for batch in warm:
                pipeline.run(batch, 300)
            alone_small = ModelsAlone(sources["small"], small_models)
            alone_v3 = ModelsAlone(sources["inceptionv3"], v3_models)
            _check_tops(figures, alone_small, alone_v3, warm)
            for i in range(counts.repeats):
                _small(rounds, pipeline, small[i], alone_small)
                _burst(rounds, pipeline, burst[i], alone_small, api)
                _inception(rounds, pipeline, inception[i], alone_v3)
            for batch in idle:
                _idle(rounds, pipeline, batch)
            figures["restarts"] = int(sum(stack.restarts.values()))
        finally:
            stack.stop(15)
            db.close()
    for key, samples in rounds.items():
        figures.update(median_spread(key, samples, 4))
    figures.update(
        pipeline_small_models=len(small_models),
        pipeline_inceptionv3_models=len(v3_models),
        pipeline_plot_types=sum(len(m.names) for m in models),
        pipeline_stable_seconds=STABLE_SECONDS,
        pipeline_image_mean_bytes=round(sum(map(len, epic.values())) / len(epic)),
        pipeline_repeats=counts.repeats,
        small_images=counts.small,
        inceptionv3_images=counts.inception,
        idle_images=counts.idle_seconds,
        pipeline_elapsed_s=round(time.monotonic() - started, 1),
    )
    return figures


def _check_tops(
    figures: dict[str, Any], small: ModelsAlone, v3: ModelsAlone, warm: list[Batch]
) -> None:
    """The untrained models' top output must sit where the label orders expect it."""
    for arch, alone, batch in (("small", small, warm[0]), ("inceptionv3", v3, warm[1])):
        tops = alone.top_positions(batch.images[:MAX_BATCH])
        figures[f"{arch}_top_positions"] = sorted(tops)
        if tops != {TOP[arch]}:
            log.warning("%s: top outputs at %s, not %s: the verdict mix is off", arch, tops, TOP)


def _note(rounds: dict[str, list[float]], key: str, value: float) -> None:
    rounds.setdefault(key, []).append(value)


def _small(
    rounds: dict[str, list[float]], pipeline: Pipeline, batch: Batch, alone: ModelsAlone
) -> None:
    done = pipeline.run(batch, 300)
    wall, cpu = alone.run(batch.names, batch.images)
    model_rate = len(batch) / wall
    _note(rounds, "small_model_images_per_s", model_rate)
    _note(rounds, "small_pipeline_s", done.seconds)
    _note(rounds, "small_pipeline_images_per_s", done.images_per_s)
    _note(rounds, "small_pipeline_steady_images_per_s", done.steady_images_per_s)
    _note(rounds, "small_mean_batch", done.mean_batch)
    _note(rounds, "small_mean_commit", done.mean_commit)
    _note(rounds, "small_bad_fraction", done.bad_fraction)
    _note(rounds, "pipeline_efficiency_small", done.images_per_s / model_rate)
    # The model server's TensorFlow work is what the same models cost in-process.
    overhead = {s: c for s, c in done.cpu.items() if s != "modelserver"}
    overhead["modelserver_beyond_tf"] = done.cpu["modelserver"] - cpu
    for service, seconds in overhead.items():
        _note(rounds, f"cpu_ms_per_image_{service}", 1000 * seconds / done.images)
    _note(rounds, "cpu_ms_per_image_tf", 1000 * cpu / done.images)
    _note(rounds, "cpu_ms_per_image_overhead", 1000 * sum(overhead.values()) / done.images)


def _burst(
    rounds: dict[str, list[float]], pipeline: Pipeline, batch: Batch, alone: ModelsAlone, api: Api
) -> None:
    model_s, _cpu = alone.run(batch.names, batch.images)
    shown_s = pipeline.burst(batch, api, 120)
    _note(rounds, "burst_model_only_s", model_s)
    _note(rounds, "burst_shown_s", shown_s)
    _note(rounds, "burst_568_extra_s", shown_s - STABLE_SECONDS - model_s)


def _inception(
    rounds: dict[str, list[float]], pipeline: Pipeline, batch: Batch, alone: ModelsAlone
) -> None:
    done = pipeline.run(batch, 300)
    wall, _cpu = alone.run(batch.names, batch.images)
    model_rate = len(batch) / wall
    _note(rounds, "inceptionv3_model_images_per_s", model_rate)
    _note(rounds, "inceptionv3_pipeline_s", done.seconds)
    _note(rounds, "inceptionv3_pipeline_images_per_s", done.images_per_s)
    _note(rounds, "inceptionv3_mean_batch", done.mean_batch)
    _note(rounds, "inceptionv3_bad_fraction", done.bad_fraction)
    _note(rounds, "pipeline_efficiency_inceptionv3", done.images_per_s / model_rate)


def _idle(rounds: dict[str, list[float]], pipeline: Pipeline, batch: Batch) -> None:
    """One image a second: CPU of every process, MariaDB and the whole model server included."""
    # Counted once a second, not ten times: the bench's own queries would be a good part of
    # MariaDB's CPU at one image a second (its CPU per image is in the figure).
    done = pipeline.run(batch, 300, pause=1.0, poll=1.0)
    _note(rounds, "idle_cpu_ms_per_image", 1000 * sum(done.cpu.values()) / done.images)
    for service, seconds in done.cpu.items():
        _note(rounds, f"idle_cpu_ms_per_image_{service}", 1000 * seconds / done.images)


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
