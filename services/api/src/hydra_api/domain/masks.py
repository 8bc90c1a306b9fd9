"""What the masks' views and changes need beside the rules (``hydra_common.masks``): the
plot types' current runs and names, and replacing a plot type's masks in a transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import masks
from hydra_common.db.schema import PlotType, RunTime


async def current_runs(session: AsyncSession) -> dict[int, int]:
    """Plot type id -> the run of its latest image (its Run-page card)."""
    rows = await session.execute(sa.select(RunTime.plot_type_id, RunTime.run_number))
    return {pid: run for pid, run in rows.tuples()}


async def current_run(session: AsyncSession, plot_type_id: int) -> int | None:
    """The run of the plot type's latest image, if it has one."""
    return (await current_runs(session)).get(plot_type_id)


async def plot_type_names(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    """Plot type id -> name, for these ids."""
    query = sa.select(PlotType.id, PlotType.name).where(PlotType.id.in_(ids))
    return {pid: name for pid, name in (await session.execute(query)).tuples()}


async def replace(
    session: AsyncSession, plot_type_id: int, specs: list[masks.MaskSpec], by: str
) -> None:
    """Replace the plot type's masks (audited by the rules' module), and commit."""
    await masks.replace(session, plot_type_id, specs, by)
    await session.commit()
