"""The labeler: images to label (or correct, in editor mode), applying labels, counts and the
leaderboard."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query

from hydra_api.common import PageDep
from hydra_api.deps import CurrentUser, Reader, SessionDep
from hydra_api.domain import labels
from hydra_api.domain.permissions import check_labelling
from hydra_api.inputs import RunNumberQuery, UtcDatetime
from hydra_api.models import LabelCounts, LabelIn, LabelResult, LeaderboardEntry, Page, PlotOut
from hydra_common.uncertainty import DEFAULT_PER_RUN

router = APIRouter(tags=["labels"])
MAX_BATCH = 2000


@router.get("/api/plots", response_model=Page[PlotOut])
async def list_plots(
    session: SessionDep,
    page: PageDep,
    _user: CurrentUser,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    labelled: Annotated[bool | None, Query(description="false: to label; true: editor.")] = None,
    label: Annotated[
        str | None, Query(max_length=32, description="Only plots with this current label.")
    ] = None,
    run_min: RunNumberQuery = None,
    run_max: RunNumberQuery = None,
    since: Annotated[UtcDatetime | None, Query()] = None,
    until: Annotated[UtcDatetime | None, Query()] = None,
    order: Annotated[
        Literal["newest", "uncertainty"],
        Query(description="newest first, or most uncertain first (needs plot_type)."),
    ] = "newest",
    per_run: Annotated[
        int, Query(ge=1, le=1000, description="Uncertainty order: images per run per tier.")
    ] = DEFAULT_PER_RUN,
) -> Page[PlotOut]:
    """Kept images with their current label, filtered for labelling or editing.

    ``order=newest``: newest first. ``order=uncertainty`` (the Labeler's *Suggested*): by the
    margin (top weight minus the runner-up's) of the inference that kept the image, most
    uncertain first, at most ``per_run`` images of one run per tier
    (``hydra_common.uncertainty``); images without weights (imported) come last. It ranks the
    newest 20,000 matching images.
    """
    return await labels.list_plots(
        session,
        page,
        plot_type=plot_type,
        labelled=labelled,
        label=label,
        run_min=run_min,
        run_max=run_max,
        since=since,
        until=until,
        order=order,
        per_run=per_run,
    )


@router.post("/api/labels", response_model=LabelResult)
async def apply_labels(
    body: Annotated[list[LabelIn], Body(min_length=1, max_length=MAX_BATCH)],
    session: SessionDep,
    user: CurrentUser,
) -> LabelResult:
    """Apply labels: each replaces the plot's label and is written to label history, all in
    one transaction. Labels not valid for the plot type are refused (422)."""
    wanted = {item.plot_id: item.label for item in body}  # the last of duplicates wins
    plots = await labels.plots_of(session, list(wanted))
    for pt_id in sorted({p.plot_type_id for p in plots.values()}):
        await check_labelling(session, user, pt_id)
    return await labels.apply_labels(session, user, wanted, plots)


@router.get("/api/labels/counts", response_model=LabelCounts)
async def label_counts(session: SessionDep, _reader: Reader, plot_type: str) -> LabelCounts:
    """How many of a plot type's kept images carry each label, and how many none."""
    return await labels.label_counts(session, plot_type)


@router.get("/api/labels/leaderboard", response_model=Page[LeaderboardEntry])
async def leaderboard(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    days: Annotated[
        float | None,
        Query(gt=0, le=36_500, description="Only the trailing days (100 years at most)."),
    ] = None,
) -> Page[LeaderboardEntry]:
    """Who labelled most (label changes made), most first."""
    return await labels.leaderboard(session, page, days)
