"""Plot types: their settings, valid labels, training defaults, and rolling a plot type back
to its previous model."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, audit, count
from hydra_api.deps import AdminUser, CurrentUser, Reader, SessionDep, check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import ModelOut, Page, PlotTypeLabelsIn, PlotTypeOut, PlotTypeUpdate
from hydra_api.routes.models import model_out
from hydra_common import labels as hall_labels
from hydra_common import lifecycle
from hydra_common.db.schema import (
    Label,
    Plot,
    PlotType,
)
from hydra_common.errors import NotFound

router = APIRouter(tags=["plot-types"])
CLEARABLE = frozenset({"default_architecture", "default_sampling"})


async def _counts(session: AsyncSession, ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    kept: dict[int, int] = dict(
        (
            await session.execute(
                sa.select(Plot.plot_type_id, sa.func.count())
                .where(Plot.plot_type_id.in_(ids))
                .group_by(Plot.plot_type_id)
            )
        )
        .tuples()
        .all()
    )
    labelled: dict[int, int] = dict(
        (
            await session.execute(
                sa.select(Label.plot_type_id, sa.func.count())
                .where(Label.plot_type_id.in_(ids))
                .group_by(Label.plot_type_id)
            )
        )
        .tuples()
        .all()
    )
    return kept, labelled


def _out(pt: PlotType, kept: dict[int, int], labelled: dict[int, int]) -> PlotTypeOut:
    return PlotTypeOut(
        id=pt.id,
        name=pt.name,
        detector=pt.detector,
        file_type=pt.file_type,
        chunked=pt.chunked,
        collect_percent=pt.collect_percent,
        ignored=pt.ignored,
        point_of_contact=pt.point_of_contact,
        description=pt.description,
        active_model_id=pt.active_model_id,
        labels=[c.name for c in pt.valid_classifications],
        plots_kept=kept.get(pt.id, 0),
        plots_labelled=labelled.get(pt.id, 0),
        default_architecture=pt.default_architecture,
        default_sampling=pt.default_sampling,
    )


async def _get(session: AsyncSession, plot_type_id: int) -> PlotType:
    pt = await session.get(PlotType, plot_type_id)
    if pt is None:
        raise NotFound(f"no plot type {plot_type_id}")
    return pt


@router.get("/api/plot-types", response_model=Page[PlotTypeOut])
async def list_plot_types(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    detector: Annotated[str | None, Query(max_length=64)] = None,
    ignored: Annotated[bool | None, Query(description="Filter on the ignored flag.")] = None,
    name: Annotated[
        str | None, Query(max_length=128, description="Name contains this text.")
    ] = None,
) -> Page[PlotTypeOut]:
    """Plot types by detector and name, with counts of kept and labelled images."""
    stmt = sa.select(PlotType)
    if detector is not None:
        stmt = stmt.where(PlotType.detector == detector)
    if ignored is not None:
        stmt = stmt.where(PlotType.ignored.is_(ignored))
    if name:
        stmt = stmt.where(PlotType.name.contains(name, autoescape=True))
    total = await count(session, stmt)
    pts = list(
        await session.scalars(
            stmt.order_by(PlotType.detector, PlotType.name).limit(page.limit).offset(page.offset)
        )
    )
    kept, labelled = await _counts(session, [p.id for p in pts])
    items = [_out(p, kept, labelled) for p in pts]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


@router.get("/api/plot-types/{plot_type_id}", response_model=PlotTypeOut)
async def get_plot_type(plot_type_id: Id, session: SessionDep, _reader: Reader) -> PlotTypeOut:
    """One plot type."""
    pt = await _get(session, plot_type_id)
    kept, labelled = await _counts(session, [pt.id])
    return _out(pt, kept, labelled)


@router.patch("/api/plot-types/{plot_type_id}", response_model=PlotTypeOut)
async def update_plot_type(
    plot_type_id: Id, body: PlotTypeUpdate, session: SessionDep, admin: AdminUser
) -> PlotTypeOut:
    """Change a plot type's collect percentage, ignored flag, detector or training defaults
    (a null default means Hydra's)."""
    pt = await _get(session, plot_type_id)
    fields = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k in CLEARABLE
    }
    before = {k: getattr(pt, k) for k in fields}
    for k, v in fields.items():
        setattr(pt, k, v)
    audit(session, admin, "update", "plot_type", pt.id, before=before, after=fields)
    await session.commit()
    kept, labelled = await _counts(session, [pt.id])
    return _out(pt, kept, labelled)


@router.put("/api/plot-types/{plot_type_id}/labels", response_model=PlotTypeOut)
async def set_plot_type_labels(
    plot_type_id: Id, body: PlotTypeLabelsIn, session: SessionDep, admin: AdminUser
) -> PlotTypeOut:
    """Set the plot type's valid labels (existing labels; 409 for removing one that images of
    the plot type carry)."""
    pt = await _get(session, plot_type_id)
    before = [c.name for c in pt.valid_classifications]
    change = await hall_labels.set_plot_type_labels(session, pt, body.labels)
    after = [c.name for c in pt.valid_classifications]
    audit(
        session,
        admin,
        "labels",
        "plot_type",
        pt.id,
        before={"labels": before},
        after={"labels": after, "added": change.added, "removed": change.removed},
    )
    await session.commit()
    kept, labelled = await _counts(session, [pt.id])
    return _out(pt, kept, labelled)


@router.post("/api/plot-types/{plot_type_id}/rollback", response_model=ModelOut)
async def rollback_plot_type(plot_type_id: Id, session: SessionDep, user: CurrentUser) -> ModelOut:
    """Serve the previously active model again: the current model's parent if it served
    before, else the retired model promoted most recently (409 when none served before)."""
    pt = await _get(session, plot_type_id)
    await check_model_editing(session, user, pt.id)
    model = await lifecycle.rollback(session, pt.id, user.username)
    await session.commit()
    return await model_out(session, model)
