"""Training runs as the API records them: asking for one, listing them, and their view.

Starting, following and cancelling the trainer itself is the launcher's
(``hydra_api.training``); this module owns the rows and their audit."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, audit
from hydra_api.domain.queries import newest_of_plot_type
from hydra_api.models import Page, TrainingRunOut
from hydra_api.training import RunParameters
from hydra_common.db.schema import PlotType, TrainingRun, TrainingRunStatus, User
from hydra_common.errors import NotFound


def to_run_out(run: TrainingRun, plot_type: str) -> TrainingRunOut:
    """The view of a training run of the named plot type."""
    return TrainingRunOut(
        id=run.id,
        plot_type=plot_type,
        plot_type_id=run.plot_type_id,
        architecture=run.architecture,
        sampling_method=run.sampling_method,
        options=run.options or {},
        status=run.status,
        progress=run.progress,
        message=run.message,
        job_name=run.job_name,
        model_id=run.model_id,
        requested_by=run.requested_by,
        created_at=run.created_at,
        updated_at=run.updated_at,
    )


async def get_run(session: AsyncSession, run_id: int) -> TrainingRun:
    """The training run with this id; NotFound otherwise."""
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    return run


async def run_out(session: AsyncSession, run: TrainingRun) -> TrainingRunOut:
    """The run as the database holds it now (the launcher or trainer may have changed it)."""
    await session.refresh(run)
    pt = await session.get(PlotType, run.plot_type_id)
    return to_run_out(run, pt.name if pt else "?")


async def create_run(
    session: AsyncSession, pt: PlotType, params: RunParameters, user: User
) -> TrainingRun:
    """Record (and audit) a queued run of the plot type, and commit: the trainer reads its
    row, so it must exist before the launcher starts it."""
    run = TrainingRun(
        plot_type_id=pt.id,
        architecture=params.architecture,
        sampling_method=params.sampling,
        options=params.options(),
        requested_by=user.username,
    )
    session.add(run)
    await session.flush()
    audit(
        session,
        user,
        "train",
        "training_run",
        run.id,
        after={
            "plot_type": pt.name,
            "architecture": params.architecture,
            "sampling": params.sampling,
            **params.options(),
        },
    )
    await session.commit()
    return run


async def record_cancel(
    session: AsyncSession, run_id: int, user: User, was: TrainingRunStatus, note: str
) -> None:
    """Audit a cancelled run (its status the launcher changed), and commit."""
    after = {"status": TrainingRunStatus.CANCELLED.value, "note": note}
    audit(
        session, user, "cancel", "training_run", run_id, before={"status": was.value}, after=after
    )
    await session.commit()


async def list_runs(
    session: AsyncSession,
    page: Pagination,
    plot_type: str | None = None,
    status: TrainingRunStatus | None = None,
) -> Page[TrainingRunOut]:
    """Training runs (of a plot type, in a status), newest first."""
    stmt = sa.select(TrainingRun, PlotType.name).join(
        PlotType, PlotType.id == TrainingRun.plot_type_id
    )
    columns = (TrainingRun.plot_type_id, TrainingRun.status, TrainingRun.id)
    return await newest_of_plot_type(
        session, stmt, columns, plot_type, status, page, lambda row: to_run_out(*row)
    )
