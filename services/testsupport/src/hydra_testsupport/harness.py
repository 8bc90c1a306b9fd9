"""The harness of Hydra's fault tests and drills: a whole local stack on a database of its
own, a simulator writing plots into its input folder from a thread, a supervisor thread that
restarts what dies (as ``hydra up`` does), and the small probes that say whether the pipeline
moved (a row in the database, a figure on a ``/metrics`` page, the API's health).

Used by ``bench/drill.py`` (``make drill``) and by the fault tests in ``tests/`` (the short
drill, graceful shutdown, overload); dev-only, never in an image.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.launcher import LocalStack, Ports, hall_environment
from hydra_common.logs import get_logger
from hydra_common.plugins import replica_counts

log = get_logger(__name__)

KILLABLE = ("feeder", "balancer", "predictor", "keeper", "modelserver", "api", "modelconfig")
MODEL_TYPES = ("FTOF_adcTime_s1", "ECAL_adcOccupancy")  # served by a small untrained model
NO_MODEL_TYPE = "RF_time"  # no model: NoModel verdicts
MODEL_INPUT = 64
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
    """Free ports and the environment of a drill's stack: quick rescans, INFO logs; as many
    copies of a service as ``extra`` asks for (``HYDRA_MODEL_SERVER_REPLICAS``)."""
    ports = Ports.free(replica_counts(extra))
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
