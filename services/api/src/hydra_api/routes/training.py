"""Training runs: ask for a new model of a plot type, follow its progress, cancel it."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, audit, count, plot_type_by_name
from hydra_api.deps import CurrentUser, Reader, SessionDep, StateDep, check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import Page, TrainingOptions, TrainingRunIn, TrainingRunOut
from hydra_api.training import TrainingLauncher, resolve_parameters
from hydra_common import training as hydra_training
from hydra_common.db.schema import PlotType, TrainingRun, TrainingRunStatus
from hydra_common.errors import NotFound
from hydra_common.logs import get_logger

router = APIRouter(tags=["training"])
log = get_logger(__name__)


def _out(run: TrainingRun, plot_type: str) -> TrainingRunOut:
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


def _launcher(state: StateDep) -> TrainingLauncher:
    launcher: TrainingLauncher = state.extras["launcher"]
    return launcher


@router.get("/api/training-options", response_model=TrainingOptions)
async def get_training_options(_reader: Reader) -> TrainingOptions:
    """The architectures, sampling methods and starts a run may ask for, and Hydra's defaults
    (a plot type's own defaults are on the plot type)."""
    return TrainingOptions(
        architectures=list(hydra_training.ARCHITECTURES),
        sampling_methods=list(hydra_training.SAMPLING_METHODS),
        inits=list(hydra_training.INITS),
        default_architecture=hydra_training.DEFAULT_ARCHITECTURE,
        default_sampling=hydra_training.DEFAULT_SAMPLING,
        default_init=dict(hydra_training.DEFAULT_INIT),
    )


@router.post("/api/training-runs", response_model=TrainingRunOut, status_code=201)
async def create_training_run(
    body: TrainingRunIn, session: SessionDep, state: StateDep, user: CurrentUser
) -> TrainingRunOut:
    """Train a new model of a plot type (a Kubernetes Job in a cluster, else a local process).

    What the request leaves out comes from the plot type's defaults, then Hydra's. One run
    per plot type trains at a time: the run stays ``queued`` while another one of the plot
    type runs. The new model serves only after someone promotes it."""
    pt = await plot_type_by_name(session, body.plot_type)
    await check_model_editing(session, user, pt.id)
    params = resolve_parameters(pt, body.architecture, body.sampling, body.epochs, body.init)
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
    await session.commit()  # the trainer reads its row, so it must exist before it starts
    await _launcher(state).start_queued(pt.id)
    await session.refresh(run)
    return _out(run, pt.name)


@router.post("/api/training-runs/{run_id}/cancel", response_model=TrainingRunOut)
async def cancel_training_run(
    run_id: Id, session: SessionDep, state: StateDep, user: CurrentUser
) -> TrainingRunOut:
    """Cancel a queued run (it never starts) or a running one (its process is stopped or its
    Kubernetes Job deleted); 409 when it already ended."""
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    await check_model_editing(session, user, run.plot_type_id)
    was, note = await _launcher(state).cancel(run_id)
    after = {"status": TrainingRunStatus.CANCELLED.value, "note": note}
    audit(
        session, user, "cancel", "training_run", run_id, before={"status": was.value}, after=after
    )
    await session.commit()
    await session.refresh(run)
    pt = await session.get(PlotType, run.plot_type_id)
    return _out(run, pt.name if pt else "?")


async def _names(session: AsyncSession) -> dict[int, str]:
    return dict((await session.execute(sa.select(PlotType.id, PlotType.name))).tuples().all())


@router.get("/api/training-runs", response_model=Page[TrainingRunOut])
async def list_training_runs(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    status: TrainingRunStatus | None = None,
) -> Page[TrainingRunOut]:
    """Training runs, newest first."""
    stmt = sa.select(TrainingRun, PlotType.name).join(
        PlotType, PlotType.id == TrainingRun.plot_type_id
    )
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        stmt = stmt.where(TrainingRun.plot_type_id == pt.id)
    if status is not None:
        stmt = stmt.where(TrainingRun.status == status)
    total = await count(session, stmt)
    rows = (
        await session.execute(
            stmt.order_by(TrainingRun.id.desc()).limit(page.limit).offset(page.offset)
        )
    ).tuples()
    items = [_out(r, name) for r, name in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


@router.get("/api/training-runs/{run_id}", response_model=TrainingRunOut)
async def get_training_run(
    run_id: Id, session: SessionDep, state: StateDep, _reader: Reader
) -> TrainingRunOut:
    """One training run with its progress (a failed Kubernetes Job is noticed here)."""
    run = await session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    await _launcher(state).refresh(run)
    await session.refresh(run)
    pt = await session.get(PlotType, run.plot_type_id)
    return _out(run, pt.name if pt else "?")
