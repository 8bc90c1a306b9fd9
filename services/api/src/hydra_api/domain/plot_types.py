"""Plot types: their settings, valid labels and image counts, and rolling one back to its
previous model (through ``hydra_common.lifecycle``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hydra_api.common import Pagination, audit
from hydra_api.domain.models import model_out
from hydra_api.domain.queries import count, plot_type_by_id
from hydra_api.models import ModelOut, Page, PlotTypeOut
from hydra_common import labels as hall_labels
from hydra_common import lifecycle
from hydra_common.db.schema import Label, Plot, PlotType, User


async def _per_plot_type(
    session: AsyncSession, plot_type_id: InstrumentedAttribute[int], ids: list[int]
) -> dict[int, int]:
    rows = await session.execute(
        sa.select(plot_type_id, sa.func.count()).where(plot_type_id.in_(ids)).group_by(plot_type_id)
    )
    return dict(rows.tuples().all())


async def _counts(session: AsyncSession, ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Kept and labelled images per plot type id."""
    kept = await _per_plot_type(session, Plot.plot_type_id, ids)
    labelled = await _per_plot_type(session, Label.plot_type_id, ids)
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


async def plot_type_out(session: AsyncSession, pt: PlotType) -> PlotTypeOut:
    """The view of one plot type, with its image counts."""
    kept, labelled = await _counts(session, [pt.id])
    return _out(pt, kept, labelled)


async def list_plot_types(
    session: AsyncSession,
    page: Pagination,
    detector: str | None = None,
    ignored: bool | None = None,
    name: str | None = None,
) -> Page[PlotTypeOut]:
    """Plot types (of a detector, ignored or not, whose name contains name) by detector and
    name, with counts of kept and labelled images."""
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


async def get_plot_type(session: AsyncSession, plot_type_id: int) -> PlotTypeOut:
    """One plot type; NotFound when there is none."""
    return await plot_type_out(session, await plot_type_by_id(session, plot_type_id))


async def update_plot_type(
    session: AsyncSession, plot_type_id: int, fields: dict[str, Any], admin: User
) -> PlotTypeOut:
    """Set the given settings of a plot type (audited)."""
    pt = await plot_type_by_id(session, plot_type_id)
    before = {k: getattr(pt, k) for k in fields}
    for k, v in fields.items():
        setattr(pt, k, v)
    audit(session, admin, "update", "plot_type", pt.id, before=before, after=fields)
    await session.commit()
    return await plot_type_out(session, pt)


async def set_labels(
    session: AsyncSession, plot_type_id: int, labels: list[str], admin: User
) -> PlotTypeOut:
    """Set the plot type's valid labels (the hall's rules: ``hydra_common.labels``; audited)."""
    pt = await plot_type_by_id(session, plot_type_id)
    before = [c.name for c in pt.valid_classifications]
    change = await hall_labels.set_plot_type_labels(session, pt, labels)
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
    return await plot_type_out(session, pt)


async def rollback(session: AsyncSession, pt: PlotType, by: str) -> ModelOut:
    """Serve the plot type's previously active model again (the life cycle's rule)."""
    model = await lifecycle.rollback(session, pt.id, by)
    await session.commit()
    return await model_out(session, model)
