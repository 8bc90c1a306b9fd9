"""Masks of accepted problems: a plot type's image regions where a known problem is
accepted until a run or a date (the rules: ``hydra_common.masks``; the keeper applies them).

Read by anyone who may read the Run page; set (as a whole) by an admin, or by an expert
with the plot type's permission; every change is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hydra_api.deps import CurrentUser, Reader, SessionDep
from hydra_api.domain import masks as mask_rows
from hydra_api.domain.permissions import check_mask_editing
from hydra_api.domain.queries import plot_type_by_id
from hydra_api.inputs import Id, Input, RunNumber, UtcDatetime
from hydra_common import masks
from hydra_common.db.schema import PlotTypeMask, utcnow

router = APIRouter(tags=["plot-types"])
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class MaskIn(Input):
    """One mask: an image-relative rectangle (0..1, origin top left), a reason, an expiry."""

    x0: Fraction
    y0: Fraction
    x1: Fraction
    y1: Fraction
    reason: str = Field(min_length=1, max_length=masks.MAX_REASON_LENGTH)
    until_run: RunNumber | None = Field(
        None, description="In force for images of this run and earlier."
    )
    until_time: UtcDatetime | None = Field(None, description="In force until this time.")


class MasksIn(Input):
    """A plot type's masks, replacing the ones it had (an empty list removes them all)."""

    masks: list[MaskIn] = Field(max_length=masks.MAX_MASKS_PER_PLOT_TYPE)


class MaskOut(BaseModel):
    """A mask as stored, and whether it is in force for the plot type's current run now."""

    id: int
    x0: float
    y0: float
    x1: float
    y1: float
    reason: str
    until_run: int | None
    until_time: datetime | None
    created_by: str
    created_at: datetime
    in_force: bool


class PlotTypeMasksOut(BaseModel):
    """A plot type's masks."""

    plot_type_id: int
    plot_type: str
    current_run: int | None
    masks: list[MaskOut]


def _out(
    pt_id: int, name: str, current_run: int | None, rows: list[PlotTypeMask]
) -> PlotTypeMasksOut:
    now = utcnow()
    run = current_run if current_run is not None else 0
    return PlotTypeMasksOut(
        plot_type_id=pt_id,
        plot_type=name,
        current_run=current_run,
        masks=[
            MaskOut(
                id=m.id,
                x0=m.x0,
                y0=m.y0,
                x1=m.x1,
                y1=m.y1,
                reason=m.reason,
                until_run=m.until_run,
                until_time=m.until_time,
                created_by=m.created_by,
                created_at=m.created_at,
                in_force=masks.in_force(m.until_run, m.until_time, run, now),
            )
            for m in rows
        ],
    )


@router.get("/api/plot-types/{plot_type_id}/masks", response_model=PlotTypeMasksOut)
async def get_masks(plot_type_id: Id, session: SessionDep, _reader: Reader) -> PlotTypeMasksOut:
    """The plot type's masks of accepted problems, each saying whether it is in force for
    the plot type's current run (the run of its latest image) now."""
    pt = await plot_type_by_id(session, plot_type_id)
    current = await mask_rows.current_run(session, pt.id)
    return _out(pt.id, pt.name, current, await masks.masks_of(session, pt.id))


@router.put("/api/plot-types/{plot_type_id}/masks", response_model=PlotTypeMasksOut)
async def put_masks(
    plot_type_id: Id, body: MasksIn, session: SessionDep, user: CurrentUser
) -> PlotTypeMasksOut:
    """Set the plot type's masks (replacing them all): while one is in force, a confirmed
    Bad whose heat map lies mostly inside the masks is recorded ``Accepted`` and does not
    alarm. Each needs a non-empty rectangle within 0..1, a reason and an expiry (a run, a
    date, or both); at most 16. Audited."""
    pt = await plot_type_by_id(session, plot_type_id)
    await check_mask_editing(session, user, pt.id)
    specs = [
        masks.MaskSpec(masks.Rect(m.x0, m.y0, m.x1, m.y1), m.reason, m.until_run, m.until_time)
        for m in body.masks
    ]
    await mask_rows.replace(session, pt.id, specs, user.username)
    current = await mask_rows.current_run(session, pt.id)
    return _out(pt.id, pt.name, current, await masks.masks_of(session, pt.id))


@router.get("/api/masks", response_model=list[PlotTypeMasksOut])
async def list_masks(session: SessionDep, _reader: Reader) -> list[PlotTypeMasksOut]:
    """Every plot type that has masks, with them (the Run page draws them on its cards)."""
    rows = await masks.all_masks(session)
    if not rows:
        return []
    by_type: dict[int, list[PlotTypeMask]] = {}
    for m in rows:
        by_type.setdefault(m.plot_type_id, []).append(m)
    names = await mask_rows.plot_type_names(session, list(by_type))
    current = await mask_rows.current_runs(session)
    return [
        _out(pid, names.get(pid, ""), current.get(pid), ms) for pid, ms in sorted(by_type.items())
    ]
