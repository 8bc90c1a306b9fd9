"""Fault drill: kill every part of a running Hydra at random moments; prove nothing is lost.

    make drill                                   # long form: >= 2,000 images, every service
                                                 # SIGKILLed several times, MariaDB restarted
    python -m bench.drill --images 300 --cycles 1 --no-restart-db    # a short one

A ``LocalStack`` (every service a supervised local process, as ``hydra up`` runs them) works
on a fresh MariaDB database with two plot types served by a small untrained model (verdict
quality is not the point here) and one plot type without a model. A simulator thread writes
plots into the input directory all along, and now and then a bad file (empty, truncated, not
an image, unknown plot type, wrong extension). Meanwhile the drill SIGKILLs, one at a time and
at random moments, the feeder, balancer, predictor, keeper, model server and API, and
restarts MariaDB once; the launcher's supervisor restarts whatever died, as Kubernetes would.
Every other fault comes right after a burst (90 images at once), so that it finds orders in
every stage: files being read, queued, predicted, waiting for their commit.

*Recovery time* of a kill is the time from the kill until an image written after the kill has
its verdict committed (so the pipeline moves again, through the restarted part); for the
model server that verdict must come from the model, and for the API it is the time until
``/api/health`` answers again. After a burst it includes working off the backlog ahead.

At the end the simulator stops, the pipeline drains, and every image written must have
exactly one ``run_history`` row: ``lost`` counts images without one, ``duplicates`` the
extra rows (by order id and by source path). Figures go to ``bench/results/drill.json``.
The CI form of this drill is ``tests/test_faults_drill.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.launcher import LocalStack, Ports, hall_environment
from hydra_common.testing import create_mysql_database, drop_mysql_database

log = logging.getLogger("bench.drill")

KILLABLE = ("feeder", "balancer", "predictor", "keeper", "modelserver", "api")
MODEL_TYPES = ("FTOF_adcTime_s1", "ECAL_adcOccupancy")  # served by a small untrained model
NO_MODEL_TYPE = "RF_time"  # no model: NoModel verdicts
MODEL_INPUT = 64
BAD_RUN = 99_999_999  # run number of the bad files, apart from the simulated runs
RUN_PERIOD = "2026-01"


# --- the database -------------------------------------------------------------------------


class Db:
    """Synchronous queries on one event loop (the drill itself is a plain loop)."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        # NullPool: no connection outlives a MariaDB restart.
        self._engine = make_engine(url, poolclass=NullPool)

    def rows(self, query: str, **params: Any) -> list[Any]:
        """The rows of a query."""

        async def run() -> list[Any]:
            async with self._engine.connect() as conn:
                return list((await conn.execute(sa.text(query), params)).all())

        return self._runner.run(run())

    def scalar(self, query: str, **params: Any) -> Any:
        """The first column of the first row."""
        return self.rows(query, **params)[0][0]

    def close(self) -> None:
        """Dispose of the engine and the loop."""
        self._runner.run(self._engine.dispose())
        self._runner.close()


def prepare_hall(
    url: str,
    model_root: Path,
    model_types: tuple[str, ...] = MODEL_TYPES,
    no_model_types: tuple[str, ...] = (NO_MODEL_TYPE,),
    collect_percent: float = 5.0,
) -> dict[str, int]:
    """Plot types, and for ``model_types`` an untrained small model each, promoted.

    Returns the model id per plot type. The models answer at random (untrained), which is
    all a drill needs: every image must get one verdict, right or wrong.
    """
    from hydra_common.db import schema as s
    from hydra_trainer.catalog import find_spec
    from hydra_trainer.export import export_untrained_model
    from hydra_trainer.registry import model_name, promote
    from hydra_trainer.store import add_plot_type

    async def run() -> dict[str, int]:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        ids: dict[str, int] = {}
        try:
            async with sessions() as session, session.begin():
                for name in (*model_types, *no_model_types):
                    spec = find_spec(name, "demo")
                    await add_plot_type(
                        session,
                        name,
                        spec.labels,
                        detector=spec.detector,
                        collect_percent=collect_percent,
                    )
            for name in model_types:
                spec = find_spec(name, "demo")
                mname = model_name(name)
                export_untrained_model(model_root, mname, 1, spec.labels, MODEL_INPUT)
                async with sessions() as session, session.begin():
                    pt = (
                        await session.execute(sa.select(s.PlotType).where(s.PlotType.name == name))
                    ).scalar_one()
                    model = s.Model(
                        plot_type_id=pt.id,
                        name=mname,
                        version=1,
                        architecture="small",
                        location=str(model_root / mname / "1"),
                        input_height=MODEL_INPUT,
                        input_width=MODEL_INPUT,
                        label_order=list(spec.labels),
                        status=s.ModelStatus.TRAINED,
                        trained_by="drill",
                    )
                    session.add(model)
                    await session.flush()
                    await promote(session, model.id, by="drill")
                    ids[name] = int(model.id)
            return ids
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --- the stack --------------------------------------------------------------------------


def stack_env(
    url: str, data_dir: Path, input_dir: Path, **extra: str
) -> tuple[dict[str, str], Ports]:
    """Free ports and the environment of a drill's stack: quick rescans, INFO logs."""
    ports = Ports.free()
    env = hall_environment(
        ports,
        url,
        data_dir,
        input_dir,
        HYDRA_MODEL_REFRESH_SECONDS="1",
        HYDRA_FEEDER_REFRESH_SECONDS="2",
        HYDRA_ADMIN_PASSWORD="drill-admin-password",
        HYDRA_FEEDER_ID="drill-feeder",
        **extra,
    )
    return env, ports


def start_stack(
    env: dict[str, str], ports: Ports, log_dir: Path, timeout: float = 300.0
) -> LocalStack:
    """Start every service (servers first) and wait until all of them answer."""
    stack = LocalStack(env, ports, log_dir)
    try:
        stack.start(wait=timeout)
        stack.wait_ready(timeout=timeout)
    except Exception:
        stack.stop(5)
        raise
    return stack


class Supervisor:
    """Runs ``stack.supervise_once()`` in a thread, as ``hydra up`` does in its main loop."""

    def __init__(self, stack: LocalStack, period: float = 0.5) -> None:
        self.stack = stack
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.stack.supervise_once()
            except Exception:  # a failed spawn is tried again on the next round
                log.exception("supervise_once failed")

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def api_answers(stack: LocalStack) -> bool:
    """True when the API's health endpoint answers 200."""
    try:
        url = f"http://127.0.0.1:{stack.ports.api}/api/health"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def scrape(port: int, name: str) -> float | None:
    """The value of an unlabelled metric on a ``/metrics`` endpoint (None: not answered)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# --- the hall -----------------------------------------------------------------------------


class _Stopped(Exception):
    pass


class Simulator:
    """Writes simulated plots into the input directory in a thread, remembering each one."""

    def __init__(
        self,
        input_dir: Path,
        plot_types: tuple[str, ...],
        interval: float,
        seed: int,
        start_run: int = 5000,
        chunks_per_run: int = 20,
        limit: int | None = None,
    ) -> None:
        self.input_dir = input_dir
        self.plot_types = plot_types
        self.interval = interval
        self.seed = seed
        self.start_run = start_run
        self.chunks_per_run = chunks_per_run
        self.limit = limit
        self.written: dict[str, float] = {}  # relative path -> monotonic time written
        self.error: BaseException | None = None
        self._burst = 0  # batches still to write without a pause
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)

    def start(self) -> Simulator:
        """Start writing."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop writing (after the image being written) and wait for the thread."""
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        """True while the thread writes."""
        return self._thread.is_alive()

    def count(self) -> int:
        """Images written so far."""
        with self._lock:
            return len(self.written)

    def paths(self) -> set[str]:
        """Every image written so far (relative paths)."""
        with self._lock:
            return set(self.written)

    def burst(self, batches: int) -> None:
        """Write the next ``batches`` batches back to back (a backlog in every stage)."""
        with self._lock:
            self._burst += batches

    def written_since(self, t: float) -> set[str]:
        """Images written after monotonic time ``t``."""
        with self._lock:
            return {p for p, w in self.written.items() if w > t}

    def _run(self) -> None:
        from hydra_trainer.catalog import find_spec
        from hydra_trainer.simulate import SimulationConfig, run_simulation

        cfg = SimulationConfig(
            out_dir=self.input_dir,
            plot_types=[find_spec(name, "demo") for name in self.plot_types],
            bad_fraction=0.2,
            interval=self.interval,
            chunks_per_run=self.chunks_per_run,
            count=self.limit,
            start_run=self.start_run,
            seed=self.seed,
            truth=False,
            run_period=RUN_PERIOD,
        )
        try:
            run_simulation(cfg, on_image=self._on_image, sleep=self._sleep)
        except _Stopped:
            pass
        except BaseException as exc:  # reported by the drill, never silently lost
            self.error = exc
            log.exception("simulator failed")

    def _on_image(self, path: Path, _truth: object) -> None:
        rel = path.relative_to(self.input_dir).as_posix()
        with self._lock:
            self.written[rel] = time.monotonic()
        if self._stop.is_set():
            raise _Stopped

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            if self._burst > 0:
                self._burst -= 1
                seconds = 0.0
        if self._stop.wait(seconds):
            raise _Stopped


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def bad_files() -> list[tuple[str, str, bytes, str]]:
    """(kind, relative path, content, outcome) of the bad inputs a drill drops among the plots.

    Outcome ``quarantined``: moved to ``quarantine/<kind>/``; ``skipped``: left in place.
    """
    png = _png_bytes()
    run = f"RunPeriod-{RUN_PERIOD}/Run{BAD_RUN}"
    return [
        ("empty", f"{run}/{NO_MODEL_TYPE}_0001.png", b"", "quarantined"),
        ("truncated", f"{run}/{NO_MODEL_TYPE}_0002.png", png[: len(png) // 2], "quarantined"),
        ("not_an_image", f"{run}/{NO_MODEL_TYPE}_0003.png", b"not a plot\n" * 40, "quarantined"),
        ("unknown_plot_type", f"{run}/NoSuchPlot_0004.png", png, "skipped"),
        ("bad_name", f"{run}/{NO_MODEL_TYPE}_0005.jpg", png, "quarantined"),
    ]


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that it appears complete at once (as the simulator does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def corpus_kinds() -> tuple[int, str]:
    """How many kinds the shared bad-input corpus (``tests/badinput``) has, and a note."""
    try:
        corpus = importlib.import_module("tests.badinput.corpus")
    except Exception as exc:  # absent, or not importable as it stands
        return 0, f"tests.badinput.corpus not usable ({exc!r}); the drill drops its own 5 bad files"
    return len(corpus.KINDS), (
        "kinds in tests.badinput.corpus.KINDS (exercised by its own test, which needs its"
        " plot types); the drill drops its own 5 bad files among the plots"
    )


# --- MariaDB ------------------------------------------------------------------------------


def mariadb_answers() -> bool:
    """True when the local MariaDB server answers a ping."""
    done = subprocess.run(
        ["mariadb-admin", "-uroot", "--connect-timeout=2", "ping"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def restart_mariadb(timeout: float = 120.0) -> float:
    """Shut the local MariaDB down and start it again; returns the outage in seconds.

    The server is shared with every other test on the machine, so the outage is kept short:
    start again as soon as it has stopped, and wait until it answers.
    """
    started = time.monotonic()
    subprocess.run(["mariadb-admin", "-uroot", "shutdown"], check=True, timeout=timeout)
    deadline = started + timeout
    while subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("mariadbd did not stop")
        time.sleep(0.1)
    subprocess.run(
        [
            "start-stop-daemon",
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ],
        check=True,
    )
    while not mariadb_answers():
        if time.monotonic() > deadline:
            raise TimeoutError("MariaDB did not come back")
        time.sleep(0.2)
    return time.monotonic() - started


# --- the drill ----------------------------------------------------------------------------


@dataclass
class DrillConfig:
    """What a drill does."""

    images: int = 2000  # write at least this many images
    cycles: int = 2  # kill every service at least this many times
    restart_db: bool = True
    interval: float = 0.5  # seconds between simulated batches (one image per plot type)
    gap: tuple[float, float] = (1.0, 8.0)  # random wait before each kill
    burst: int = 30  # before every other kill, this many batches back to back
    seed: int = 2026
    recover_timeout: float = 240.0
    drain_timeout: float = 600.0
    kill_until_images: bool = True  # go on killing until `images` are written
    keep: bool = False  # keep the database and data dir (logs) afterwards
    env: dict[str, str] = field(default_factory=dict)  # extra settings of the stack


@dataclass
class Kill:
    """One fault and how long the pipeline took to move again."""

    target: str
    at_s: float  # seconds since the drill started
    recover_s: float | None  # None: it did not recover within the timeout
    images_written: int  # images written when it happened
    burst: bool = False  # it hit a burst of images (a backlog in every stage)
    outage_s: float | None = None  # MariaDB only: shutdown to answering again


@dataclass
class Outcome:
    """What a drill found."""

    images: int = 0
    rows: int = 0
    lost: int = 0
    duplicates: int = 0
    duplicate_order_ids: int = 0
    duplicate_source_paths: int = 0
    unexpected_rows: int = 0
    error_rows: int = 0
    ledger_pending: int = 0
    kills: list[Kill] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    unexpected_restarts: dict[str, int] = field(default_factory=dict)
    bad_files: int = 0
    bad_files_with_rows: int = 0
    bad_files_quarantined: int = 0
    bad_files_skipped: int = 0
    bad_files_misplaced: list[str] = field(default_factory=list)
    bad_input_kinds: int = 0
    bad_input_note: str = ""
    simulator_error: str = ""
    drain_s: float = 0.0
    elapsed_s: float = 0.0
    lost_examples: list[str] = field(default_factory=list)
    data_dir: str = ""

    def recoveries(self) -> dict[str, list[float | None]]:
        """Recovery times per target."""
        out: dict[str, list[float | None]] = {}
        for k in self.kills:
            out.setdefault(k.target, []).append(k.recover_s)
        return out

    def figures(self) -> dict[str, Any]:
        """The JSON figures of bench/results/drill.json."""
        times = [k.recover_s for k in self.kills if k.recover_s is not None]
        per: dict[str, Any] = {}
        for target, values in self.recoveries().items():
            done = [v for v in values if v is not None]
            per[target] = {
                "kills": len(values),
                "recovered": len(done),
                "recover_max_s": round(max(done), 2) if done else None,
                "recover_mean_s": round(sum(done) / len(done), 2) if done else None,
                "recover_s": [None if v is None else round(v, 2) for v in values],
            }
        outage = [k.outage_s for k in self.kills if k.outage_s is not None]
        return {
            "images": self.images,
            "rows": self.rows,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "duplicate_order_ids": self.duplicate_order_ids,
            "duplicate_source_paths": self.duplicate_source_paths,
            "unexpected_rows": self.unexpected_rows,
            "error_rows": self.error_rows,
            "ledger_pending": self.ledger_pending,
            "kills": len(self.kills),
            "not_recovered": sum(k.recover_s is None for k in self.kills),
            "recover_max_s": round(max(times), 2) if times else None,
            "recovery": per,
            "mariadb_outage_s": round(outage[0], 2) if outage else None,
            "restarts": self.restarts,
            "unexpected_restarts": self.unexpected_restarts,
            "bad_input_kinds": self.bad_input_kinds,
            "bad_input_note": self.bad_input_note,
            "bad_files": self.bad_files,
            "bad_files_with_rows": self.bad_files_with_rows,
            "bad_files_quarantined": self.bad_files_quarantined,
            "bad_files_skipped": self.bad_files_skipped,
            "bad_files_misplaced": self.bad_files_misplaced,
            "drain_s": round(self.drain_s, 2),
            "elapsed_s": round(self.elapsed_s, 1),
            "simulator_error": self.simulator_error,
            "timeline": [
                {
                    "target": k.target,
                    "at_s": round(k.at_s, 1),
                    "recover_s": None if k.recover_s is None else round(k.recover_s, 2),
                    "images_written": k.images_written,
                    "burst": k.burst,
                }
                for k in self.kills
            ],
        }


class Drill:
    """One drill on one stack: call ``run()``."""

    def __init__(self, cfg: DrillConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.outcome = Outcome()

    @contextmanager
    def _hall(self) -> Iterator[tuple[str, Path]]:
        url = create_mysql_database("hydra_drill")
        data_dir = Path(tempfile.mkdtemp(prefix="hydra-drill-"))
        self.failed = True  # until _check finds everything in order
        try:
            yield url, data_dir
        finally:
            if not self.failed and not self.cfg.keep:
                drop_mysql_database(url)
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                log.warning("keeping the drill's database and data dir", extra={"url": url})

    def run(self, progress: Callable[[str], None] = print) -> Outcome:
        """Prepare, start, drill, drain and check; returns what was found."""
        self.progress = progress
        started = time.monotonic()
        self.outcome.bad_input_kinds, self.outcome.bad_input_note = corpus_kinds()
        with self._hall() as (url, data_dir):
            self.outcome.data_dir = str(data_dir)
            input_dir = self.input_dir = data_dir / "input"
            input_dir.mkdir()
            prepare_hall(url, data_dir / "models")
            env, ports = stack_env(url, data_dir, input_dir, **self.cfg.env)
            progress(f"starting the stack (logs in {data_dir / 'logs'})")
            stack = start_stack(env, ports, data_dir / "logs")
            self.db = Db(url)
            try:
                with Supervisor(stack):
                    self._drill(stack, input_dir, started)
                self._check(stack, data_dir)
            finally:
                stack.stop(15)
                self.db.close()
        self.outcome.elapsed_s = time.monotonic() - started
        return self.outcome

    def _targets(self) -> Iterator[str]:
        """Every service once per cycle in random order; MariaDB once, in the first cycle.

        After ``cycles`` cycles, more follow only while the simulator has not yet written
        ``images`` images and ``kill_until_images`` is set.
        """
        cycle_no = 0
        while cycle_no < self.cfg.cycles or (
            self.cfg.kill_until_images and self.sim.count() < self.cfg.images
        ):
            cycle: list[str] = list(KILLABLE)
            self.rng.shuffle(cycle)
            if cycle_no == 0 and self.cfg.restart_db:
                cycle.insert(self.rng.randrange(1, len(cycle) + 1), "mariadb")
            yield from cycle
            cycle_no += 1

    def _drill(self, stack: LocalStack, input_dir: Path, started: float) -> None:
        cfg, out = self.cfg, self.outcome
        sim = Simulator(
            input_dir,
            (*MODEL_TYPES, NO_MODEL_TYPE),
            cfg.interval,
            cfg.seed,
            start_run=5000 + cfg.seed % 1000 * 10,
        )
        self.sim = sim
        sim.start()
        bad = iter(bad_files())
        try:
            self._wait_first_rows()
            for target in self._targets():
                time.sleep(self.rng.uniform(*cfg.gap))
                # A bad file now and then: it must never stop the pipeline nor get a row.
                for _kind, rel, data, _outcome in itertools.islice(bad, 1):
                    write_atomically(input_dir / rel, data)
                    out.bad_files += 1
                burst = cfg.burst > 0 and self.rng.random() < 0.5
                if burst:
                    # Kill while a backlog moves through every stage.
                    sim.burst(cfg.burst)
                    time.sleep(self.rng.uniform(0.2, 2.0))
                k = self._kill(stack, target, started, burst)
                out.kills.append(k)
                self.progress(
                    f"[{k.at_s:6.1f}s] {target:<11} recovered in "
                    + (f"{k.recover_s:.1f}s" if k.recover_s is not None else "NEVER")
                    + f"  ({sim.count()} images written{', in a burst' if k.burst else ''})"
                )
            for _kind, rel, data, _outcome in bad:
                write_atomically(input_dir / rel, data)
                out.bad_files += 1
            while sim.count() < cfg.images and sim.running:
                time.sleep(0.5)
        finally:
            sim.stop()
        if sim.error is not None:
            out.simulator_error = repr(sim.error)
        out.images = sim.count()
        self.progress(f"simulator stopped after {out.images} images; draining")

    def _wait_first_rows(self) -> None:
        deadline = time.monotonic() + self.cfg.recover_timeout
        while self._rows_count() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the pipeline committed nothing")
            time.sleep(0.5)

    def _rows_count(self) -> int:
        try:
            return int(self.db.scalar("SELECT COUNT(*) FROM run_history"))
        except Exception:  # MariaDB restarting
            return 0

    def _max_id(self) -> int:
        return int(self.db.scalar("SELECT COALESCE(MAX(id), 0) FROM run_history"))

    def _kill(self, stack: LocalStack, target: str, started: float, burst: bool) -> Kill:
        last_id = self._max_id()
        t0 = time.monotonic()
        kill = Kill(target, t0 - started, None, self.sim.count(), burst=burst)
        if target == "mariadb":
            kill.outage_s = restart_mariadb()
        else:
            stack.kill(target, signal.SIGKILL)  # the supervisor thread restarts it
        deadline = t0 + self.cfg.recover_timeout
        while time.monotonic() < deadline:
            if self._progressed(stack, target, t0, last_id):
                kill.recover_s = time.monotonic() - t0
                break
            time.sleep(0.25)
        return kill

    def _progressed(self, stack: LocalStack, target: str, t0: float, last_id: int) -> bool:
        """Has the pipeline moved since ``t0``, through ``target``?"""
        if target == "api":
            return api_answers(stack)
        try:
            rows = self.db.rows(
                "SELECT rh.source_path, rh.status, pt.name FROM run_history rh"
                " JOIN plot_types pt ON pt.id = rh.plot_type_id WHERE rh.id > :last",
                last=last_id,
            )
        except Exception:  # MariaDB still restarting
            return False
        fresh = self.sim.written_since(t0)
        for path, status, plot_type in rows:
            if path not in fresh:
                continue
            if target != "modelserver":
                return True
            # The model server's way back: a verdict the model made after the kill.
            if plot_type in MODEL_TYPES and str(status).lower() == "ok":
                return True
        return False

    def _check(self, stack: LocalStack, data_dir: Path) -> None:
        out = self.outcome
        written = self.sim.paths()
        begun = time.monotonic()
        deadline = begun + self.cfg.drain_timeout
        while time.monotonic() < deadline:
            if self._rows_count() >= len(written):
                break
            time.sleep(1.0)
        time.sleep(3.0)  # an extra (duplicate) row would show up now
        out.drain_s = time.monotonic() - begun
        rows = self.db.rows("SELECT source_path, order_id, status FROM run_history")
        paths = [r[0] for r in rows]
        out.rows = len(rows)
        out.duplicate_order_ids = len(rows) - len({r[1] for r in rows})
        out.duplicate_source_paths = len(paths) - len(set(paths))
        out.duplicates = out.duplicate_order_ids + out.duplicate_source_paths
        lost = sorted(written - set(paths))
        out.lost = len(lost)
        out.lost_examples = lost[:10]
        out.unexpected_rows = len(set(paths) - written)
        out.error_rows = sum(str(r[2]).lower() == "error" for r in rows)
        out.ledger_pending = int(
            self.db.scalar("SELECT COUNT(*) FROM fed_files WHERE state = 'pending'")
        )
        bad = bad_files()[: out.bad_files]
        out.bad_files_with_rows = len({rel for _k, rel, _d, _o in bad} & set(paths))
        for kind, rel, _data, outcome in bad:
            where = data_dir / "quarantine" / kind / rel if outcome == "quarantined" else None
            if where is not None and where.is_file():
                out.bad_files_quarantined += 1
            elif where is None and (self.input_dir / rel).is_file():
                out.bad_files_skipped += 1
            else:
                out.bad_files_misplaced.append(f"{kind}: {rel}")
        out.restarts = dict(stack.restarts)
        killed = {t: sum(k.target == t for k in out.kills) for t in KILLABLE}
        out.unexpected_restarts = {
            s: n - killed.get(s, 0) for s, n in stack.restarts.items() if n != killed.get(s, 0)
        }
        self.failed = bool(
            out.lost
            or out.duplicates
            or out.unexpected_rows
            or out.bad_files_with_rows
            or out.bad_files_misplaced
            or any(k.recover_s is None for k in out.kills)
        )


def main() -> None:
    """``make drill``: the long form; prints the figures and writes bench/results/drill.json."""
    from bench.results import record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--no-restart-db", dest="restart_db", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument("--no-record", dest="record", action="store_false")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncmy").setLevel(logging.ERROR)  # migration noise
    cfg = DrillConfig(
        images=args.images,
        cycles=args.cycles,
        restart_db=args.restart_db,
        interval=args.interval,
        seed=args.seed,
        keep=args.keep,
    )
    outcome = Drill(cfg).run()
    figures = {**outcome.figures(), "seed": cfg.seed, "cycles": cfg.cycles}
    if args.record:
        path = record("drill", figures)
        print(f"figures written to {path}")
    short = {k: v for k, v in figures.items() if k not in ("timeline", "recovery")}
    print(json.dumps(short, indent=2))
    for target, fig in figures["recovery"].items():
        print(f"  {target:<11} kills={fig['kills']} max={fig['recover_max_s']}s {fig['recover_s']}")
    failed = (
        outcome.lost
        or outcome.duplicates
        or outcome.unexpected_rows
        or outcome.bad_files_with_rows
        or outcome.bad_files_misplaced
        or figures["not_recovered"]
    )
    if failed:
        raise SystemExit(f"DRILL FAILED (data kept in {outcome.data_dir})")


if __name__ == "__main__":
    main()
