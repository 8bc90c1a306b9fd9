"""Training runs: what a run asks for, the queue (one run per plot type at a time), starting
``hydra train`` as a local child process or a Kubernetes Job, and cancelling.

The queue lives in the ``training_runs`` rows, so every API replica sees the same one: a new
run is ``queued``; the oldest queued run of a plot type with none ``running`` is claimed with
a conditional UPDATE (queued -> running, under a lock on the plot type's row), so two
replicas never start it twice. The next queued run starts when one ends: at once when this
replica started the process, cancelled the run or was asked for the new one; otherwise when
a poll of the rows every ``poll_seconds`` sees a plot type's running run gone (the trainer
reported, a Kubernetes Job failed, another replica's process died). At start-up the API
resumes runs left queued while none ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_api import k8s
from hydra_api.settings import ApiSettings
from hydra_common.db.schema import PlotType, TrainingRun, TrainingRunStatus, utcnow
from hydra_common.errors import Conflict, InvalidInput, NotFound
from hydra_common.logs import get_logger
from hydra_common.training import ARCHITECTURES, DEFAULT_INIT, INITS, SAMPLING_METHODS
from hydra_common.training import resolve_defaults as resolve_architecture_and_sampling

log = get_logger(__name__)
TERMINAL = (TrainingRunStatus.SUCCEEDED, TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED)
ACTIVE = (TrainingRunStatus.QUEUED, TrainingRunStatus.RUNNING)
KILL_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class RunParameters:
    """What a run trains with, every choice resolved (epochs None: the trainer's setting)."""

    architecture: str
    sampling: str
    epochs: int | None
    init: str

    def options(self) -> dict[str, object]:
        """The ``training_runs.options`` of the run."""
        return {"epochs": self.epochs, "init": self.init}


def resolve_parameters(
    plot_type: PlotType,
    architecture: str | None = None,
    sampling: str | None = None,
    epochs: int | None = None,
    init: str | None = None,
) -> RunParameters:
    """Fill what a request left out: the plot type's defaults, then Hydra's.

    Only names from ``hydra_common.training`` pass (never a ``module:function`` plug-in)."""
    arch, samp = resolve_architecture_and_sampling(
        architecture, sampling, plot_type.default_architecture, plot_type.default_sampling
    )
    if arch not in ARCHITECTURES:
        raise InvalidInput(f"unknown architecture {arch!r} (one of {', '.join(ARCHITECTURES)})")
    if samp not in SAMPLING_METHODS:
        raise InvalidInput(f"unknown sampling {samp!r} (one of {', '.join(SAMPLING_METHODS)})")
    start = init or DEFAULT_INIT[arch]
    if start not in INITS:
        raise InvalidInput(f"unknown init {start!r} (one of {', '.join(INITS)})")
    if start == "imagenet" and DEFAULT_INIT[arch] != "imagenet":
        raise InvalidInput(f"architecture {arch} has no ImageNet weights; use init random")
    return RunParameters(arch, samp, epochs, start)


def trainer_args(run: TrainingRun, plot_type: str) -> list[str]:
    """The arguments of ``hydra train`` for a run (after ``train``)."""
    args = [plot_type, "--run-id", str(run.id)]
    args += ["--arch", run.architecture, "--sampling", run.sampling_method]
    options = run.options or {}
    if options.get("epochs"):
        args += ["--epochs", str(options["epochs"])]
    if options.get("init"):
        args += ["--init", str(options["init"])]
    return args


class TrainingLauncher:
    """Starts queued runs with the configured backend, notices their end, cancels them."""

    poll_seconds = 5.0  # how often the rows are polled (tests make it shorter)

    def __init__(
        self, settings: ApiSettings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._watchers: set[asyncio.Task[None]] = set()
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._lock = asyncio.Lock()  # one queue pass at a time in this replica
        self._poller: asyncio.Task[None] | None = None
        self._busy: set[int] = set()  # plot types with a running run at the last look
        self._looking = asyncio.Lock()  # one look at a time: each one replaces the last

    def local_command(self) -> list[str]:
        """The command line that starts a local training run (before its arguments)."""
        if self.settings.training_command:
            return shlex.split(self.settings.training_command)
        return [sys.executable, "-c", "from hydra_common.cli import main; main()", "train"]

    async def start(self) -> None:
        """Resume the queue (runs left queued while no API ran), then poll for ended runs."""
        try:
            await self.start_queued()
            self._busy = await self._busy_plot_types()
        except Exception as exc:  # the database may not answer yet; the poll catches up
            log.warning("training queue not resumed", extra={"error": str(exc)})
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="training-queue")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll_once()
            except Exception as exc:  # the database may be away for a while; try again
                log.warning("training queue pass failed", extra={"error": str(exc)})

    async def poll_once(self) -> None:
        """Notice runs that ended since the last look (their trainer reported, a Job failed,
        another replica's process died) and start the next queued run of their plot type.

        Looks are taken one at a time: the poller's and a caller's would otherwise cross, and
        the older answer, kept last, would hide the end of a run the newer one saw running.
        A look replaces the last one only once the next runs started, so a pass that fails
        on the way leaves the ends it saw for the next pass."""
        async with self._looking:
            await self.check_jobs()
            busy = await self._busy_plot_types()
            for plot_type_id in sorted(self._busy - busy):
                await self.start_queued(plot_type_id)
            self._busy = busy

    async def _busy_plot_types(self) -> set[int]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                sa.select(TrainingRun.plot_type_id)
                .where(TrainingRun.status == TrainingRunStatus.RUNNING)
                .distinct()
            )
            return set(rows)

    # --- the queue ----------------------------------------------------------------------

    async def start_queued(self, plot_type_id: int | None = None) -> None:
        """Start the oldest queued run of every plot type (or of one) with none running."""
        async with self._lock:
            async with self.sessionmaker() as session:
                running = sa.select(TrainingRun.plot_type_id).where(
                    TrainingRun.status == TrainingRunStatus.RUNNING
                )
                stmt = (
                    sa.select(TrainingRun.plot_type_id, sa.func.min(TrainingRun.id))
                    .where(
                        TrainingRun.status == TrainingRunStatus.QUEUED,
                        TrainingRun.plot_type_id.not_in(running),
                    )
                    .group_by(TrainingRun.plot_type_id)
                )
                if plot_type_id is not None:
                    stmt = stmt.where(TrainingRun.plot_type_id == plot_type_id)
                heads = (await session.execute(stmt)).tuples().all()
            for pt_id, run_id in heads:
                if await self._claim(pt_id, run_id):
                    await self._launch(run_id)

    async def _claim(self, plot_type_id: int, run_id: int) -> bool:
        """queued -> running, if it is still queued and its plot type runs nothing else."""
        async with self.sessionmaker() as session, session.begin():
            # The plot type's row lock orders claims of the same plot type across replicas.
            await session.execute(
                sa.select(PlotType.id).where(PlotType.id == plot_type_id).with_for_update()
            )
            busy = await session.scalar(
                sa.select(TrainingRun.id)
                .where(
                    TrainingRun.plot_type_id == plot_type_id,
                    TrainingRun.status == TrainingRunStatus.RUNNING,
                )
                .limit(1)
            )
            if busy is not None:
                return False
            claimed = await session.execute(
                sa.update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.status == TrainingRunStatus.QUEUED)
                .values(status=TrainingRunStatus.RUNNING, message="starting", updated_at=utcnow())
            )
            return bool(getattr(claimed, "rowcount", 0))

    async def _launch(self, run_id: int) -> None:
        async with self.sessionmaker() as session:
            run = await session.get(TrainingRun, run_id)
            pt = await session.get(PlotType, run.plot_type_id) if run else None
            if run is None or pt is None:
                return
            args = trainer_args(run, pt.name)
            try:
                if self.settings.training_backend == "kubernetes":
                    run.job_name = await asyncio.to_thread(
                        k8s.create_training_job, self.settings, run.id, pt.name, args
                    )
                else:
                    await self._start_process(run.id, run.plot_type_id, args)
            except Exception as exc:
                log.exception("training launch failed", extra={"run_id": run.id})
                await session.rollback()
                await self.mark_failed(
                    run_id, f"could not start: {type(exc).__name__}: {exc}"[:4000]
                )
                return
            await session.commit()
        log.info("training started", extra={"run_id": run_id, "args": " ".join(args)})

    async def _start_process(self, run_id: int, plot_type_id: int, args: list[str]) -> None:
        log_dir = self.settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"training-{run_id}.log", "ab") as out:  # noqa: ASYNC230 (tiny)
            proc = await asyncio.create_subprocess_exec(
                *self.local_command(),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # an API restart does not kill a running training
            )
        self._processes[run_id] = proc
        task = asyncio.create_task(
            self._watch(run_id, plot_type_id, proc), name=f"training-{run_id}"
        )
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(
        self, run_id: int, plot_type_id: int, proc: asyncio.subprocess.Process
    ) -> None:
        code = await proc.wait()
        self._processes.pop(run_id, None)
        log.info("training process ended", extra={"run_id": run_id, "code": code})
        # The trainer records its own success or failure; this only catches a silent end.
        why = f"trainer exited with code {code}" if code else "trainer ended without a report"
        await self.mark_failed(run_id, f"{why}; see logs/training-{run_id}.log")
        await self.start_queued(plot_type_id)

    async def mark_failed(self, run_id: int, message: str) -> None:
        """Mark a run failed unless it already ended (succeeded, failed or cancelled)."""
        async with self.sessionmaker() as session:
            await session.execute(
                sa.update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.status.not_in(TERMINAL))
                .values(status=TrainingRunStatus.FAILED, message=message, updated_at=utcnow())
            )
            await session.commit()

    # --- Kubernetes Jobs ------------------------------------------------------------------

    async def check_jobs(self) -> None:
        """Notice running Kubernetes Jobs that failed or vanished before the trainer reported."""
        if self.settings.training_backend != "kubernetes":
            return
        async with self.sessionmaker() as session:
            runs = list(
                await session.scalars(
                    sa.select(TrainingRun).where(
                        TrainingRun.status == TrainingRunStatus.RUNNING,
                        TrainingRun.job_name.is_not(None),
                    )
                )
            )
        for run in runs:
            await self.refresh(run)

    async def refresh(self, run: TrainingRun) -> None:
        """Notice a Kubernetes Job that failed or vanished before the trainer reported."""
        if (
            self.settings.training_backend != "kubernetes"
            or not run.job_name
            or run.status in TERMINAL
        ):
            return
        try:
            state = await asyncio.to_thread(k8s.job_state, self.settings, run.job_name)
        except Exception as exc:  # the page still shows the run when the API server is away
            log.warning("job state unknown", extra={"job": run.job_name, "error": str(exc)})
            return
        if state in ("failed", "missing"):
            await self.mark_failed(run.id, f"Kubernetes Job {run.job_name} {state}")

    # --- cancelling -----------------------------------------------------------------------

    async def cancel(self, run_id: int) -> tuple[TrainingRunStatus, str]:
        """Cancel a queued or running run; returns the status it had and what was done.

        A queued run never starts. A running one is stopped: this replica's local process
        gets SIGTERM (its process group), a Kubernetes Job is deleted; in every case the
        trainer stops by itself at its next progress report, seeing its row cancelled."""
        async with self.sessionmaker() as session:
            run = await session.get(TrainingRun, run_id)
            if run is None:
                raise NotFound(f"no training run {run_id}")
            was = run.status
            if was not in ACTIVE:
                raise Conflict(f"training run {run_id} already ended ({was.value})")
            done = await session.execute(
                sa.update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.status == was)
                .values(status=TrainingRunStatus.CANCELLED, updated_at=utcnow())
            )
            await session.commit()
            if not getattr(done, "rowcount", 0):
                raise Conflict(f"training run {run_id} changed meanwhile; look again")
            job_name, plot_type_id = run.job_name, run.plot_type_id
        note = "removed from the queue"
        if was is TrainingRunStatus.RUNNING:
            note = await self._stop(run_id, job_name)
            await self.start_queued(plot_type_id)
        return was, note

    async def _stop(self, run_id: int, job_name: str | None) -> str:
        proc = self._processes.get(run_id)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            task = asyncio.create_task(self._kill_later(proc), name=f"kill-training-{run_id}")
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
            return "process stopped"
        if job_name and self.settings.training_backend == "kubernetes":
            try:
                deleted = await asyncio.to_thread(k8s.delete_job, self.settings, job_name)
            except Exception as exc:
                log.warning("job not deleted", extra={"job": job_name, "error": str(exc)})
                return f"Kubernetes Job {job_name} not deleted ({exc}); the trainer stops itself"
            return f"Kubernetes Job {job_name} deleted" if deleted else "Job already gone"
        return "the trainer stops at its next progress report"

    @staticmethod
    async def _kill_later(proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Stop polling and watching (local runs keep running; the trainer reports its end)."""
        tasks = [*self._watchers, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poller = None
