"""Model drift per plot type, as the keeper's drift loop last measured it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination
from hydra_api.domain.queries import count, plot_type_by_name
from hydra_common.db.schema import Model, ModelDrift, PlotType

# A drift row with its plot type's name and detector and its model's name and version.
DriftRow = tuple[ModelDrift, str, str, str | None, int | None]


async def drift_rows(
    session: AsyncSession,
    page: Pagination,
    plot_type: str | None = None,
    retrain_suggested: bool | None = None,
) -> tuple[list[DriftRow], int]:
    """One page of the plot types' drift (retraining suggested first, then the largest drift
    score), and how many rows match in all."""
    stmt = (
        sa.select(ModelDrift, PlotType.name, PlotType.detector, Model.name, Model.version)
        .join(PlotType, PlotType.id == ModelDrift.plot_type_id)
        .outerjoin(Model, Model.id == ModelDrift.model_id)
    )
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        stmt = stmt.where(ModelDrift.plot_type_id == pt.id)
    if retrain_suggested is not None:
        stmt = stmt.where(ModelDrift.retrain_suggested.is_(retrain_suggested))
    total = await count(session, stmt)
    ordered = stmt.order_by(
        ModelDrift.retrain_suggested.desc(),
        sa.func.coalesce(ModelDrift.drift_score, -1.0).desc(),
        PlotType.name,
    )
    rows = (await session.execute(ordered.limit(page.limit).offset(page.offset))).tuples()
    return list(rows), total
