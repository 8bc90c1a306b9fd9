"""Training runs: ask for a new model of a plot type, follow its progress, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hydra_api.common import PageDep
from hydra_api.deps import CurrentUser, Reader, SessionDep, StateDep
from hydra_api.domain import training
from hydra_api.domain.permissions import check_model_editing
from hydra_api.domain.queries import plot_type_by_name
from hydra_api.inputs import Id
from hydra_api.models import Page, TrainingOptions, TrainingRunIn, TrainingRunOut
from hydra_api.training import resolve_parameters
from hydra_common import training as hydra_training
from hydra_common.db.schema import TrainingRunStatus
from hydra_common.logs import get_logger

router = APIRouter(tags=["training"])
log = get_logger(__name__)


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
    run = await training.create_run(session, pt, params, user)
    await state.running_launcher().start_queued(pt.id)
    return await training.run_out(session, run)


@router.post("/api/training-runs/{run_id}/cancel", response_model=TrainingRunOut)
async def cancel_training_run(
    run_id: Id, session: SessionDep, state: StateDep, user: CurrentUser
) -> TrainingRunOut:
    """Cancel a queued run (it never starts) or a running one (its process is stopped or its
    Kubernetes Job deleted); 409 when it already ended."""
    run = await training.get_run(session, run_id)
    await check_model_editing(session, user, run.plot_type_id)
    was, note = await state.running_launcher().cancel(run_id)
    await training.record_cancel(session, run_id, user, was, note)
    return await training.run_out(session, run)


@router.get("/api/training-runs", response_model=Page[TrainingRunOut])
async def list_training_runs(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    status: TrainingRunStatus | None = None,
) -> Page[TrainingRunOut]:
    """Training runs, newest first."""
    return await training.list_runs(session, page, plot_type, status)


@router.get("/api/training-runs/{run_id}", response_model=TrainingRunOut)
async def get_training_run(
    run_id: Id, session: SessionDep, state: StateDep, _reader: Reader
) -> TrainingRunOut:
    """One training run with its progress (a failed Kubernetes Job is noticed here)."""
    run = await training.get_run(session, run_id)
    await state.running_launcher().refresh(run)
    return await training.run_out(session, run)
