"""Starting training runs: ``hydra train`` as a local child process, or a Kubernetes Job."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_api import k8s
from hydra_api.settings import ApiSettings
from hydra_common.db.schema import TrainingRun, TrainingRunStatus
from hydra_common.logs import get_logger

log = get_logger(__name__)
TERMINAL = (TrainingRunStatus.SUCCEEDED, TrainingRunStatus.FAILED)


class TrainingLauncher:
    """Starts training runs with the configured backend and notices local ones that die."""

    def __init__(
        self, settings: ApiSettings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self._watchers: set[asyncio.Task[None]] = set()

    def local_command(self) -> list[str]:
        """The command line that starts a local training run (before its arguments)."""
        if self.settings.training_command:
            return shlex.split(self.settings.training_command)
        return [sys.executable, "-c", "from hydra_common.cli import main; main()", "train"]

    async def launch(self, run_id: int, plot_type: str) -> str | None:
        """Start the run; returns the Kubernetes Job name (None for a local process)."""
        if self.settings.training_backend == "kubernetes":
            return await asyncio.to_thread(
                k8s.create_training_job, self.settings, run_id, plot_type
            )
        log_dir = self.settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"training-{run_id}.log", "ab") as out:  # noqa: ASYNC230 (tiny)
            proc = await asyncio.create_subprocess_exec(
                *self.local_command(),
                plot_type,
                "--run-id",
                str(run_id),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # an API restart does not kill a running training
            )
        log.info("training started", extra={"run_id": run_id, "pid": proc.pid})
        task = asyncio.create_task(self._watch(run_id, proc), name=f"training-{run_id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return None

    async def _watch(self, run_id: int, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        log.info("training process ended", extra={"run_id": run_id, "code": code})
        if code == 0:
            return
        await self.mark_failed(
            run_id, f"trainer exited with code {code}; see logs/training-{run_id}.log"
        )

    async def mark_failed(self, run_id: int, message: str) -> None:
        """Mark a run failed unless the trainer already finished it."""
        async with self.sessionmaker() as session:
            await session.execute(
                sa.update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.status.not_in(TERMINAL))
                .values(status=TrainingRunStatus.FAILED, message=message)
            )
            await session.commit()

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

    async def stop(self) -> None:
        """Stop watching local runs (they keep running; the trainer reports its own end)."""
        for task in list(self._watchers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
