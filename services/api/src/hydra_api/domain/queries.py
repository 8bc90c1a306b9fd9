"""Query helpers the domain modules share: counting, a plot type by name or id, label colours,
the newest-first page of a plot type's rows, and the health check's query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hydra_api.common import Pagination
from hydra_api.models import Page
from hydra_common.db.schema import Classification, PlotType
from hydra_common.errors import NotFound
from hydra_common.labels import NO_MODEL

NO_MODEL_COLOR = "#000000"
Ts = TypeVarTuple("Ts")
T = TypeVar("T")


def aware(t: datetime) -> datetime:
    """A time with its zone (the database hands back naive UTC)."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def colors(session: AsyncSession) -> dict[str, str]:
    """Label name -> display colour (NO_MODEL is black)."""
    rows = await session.execute(sa.select(Classification.name, Classification.color))
    result = {name: color for name, color in rows.tuples()}
    result.setdefault(NO_MODEL, NO_MODEL_COLOR)
    return result


async def plot_type_by_name(session: AsyncSession, name: str) -> PlotType:
    """The plot type called name; 404 when there is none."""
    pt = await session.scalar(sa.select(PlotType).where(PlotType.name == name))
    if pt is None:
        raise NotFound(f"no plot type {name!r}")
    return pt


async def plot_type_by_id(session: AsyncSession, plot_type_id: int) -> PlotType:
    """The plot type with this id; 404 when there is none."""
    pt = await session.get(PlotType, plot_type_id)
    if pt is None:
        raise NotFound(f"no plot type {plot_type_id}")
    return pt


async def count(session: AsyncSession, stmt: sa.Select[*tuple[Any, ...]]) -> int:
    """Rows a select would return."""
    total = await session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    return int(total or 0)


async def newest_of_plot_type(
    session: AsyncSession,
    stmt: sa.Select[*Ts],
    columns: tuple[
        InstrumentedAttribute[int], InstrumentedAttribute[Any], InstrumentedAttribute[int]
    ],
    plot_type: str | None,
    status: object | None,
    page: Pagination,
    out: Callable[[tuple[*Ts]], T],
) -> Page[T]:
    """One page of stmt's rows (each shaped by ``out``), newest (highest id) first, narrowed
    to a plot type (by name) and a status when given. ``columns`` are the rows' plot-type id,
    status and id columns (models and training runs share the shape)."""
    plot_type_id, status_column, id_column = columns
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        stmt = stmt.where(plot_type_id == pt.id)
    if status is not None:
        stmt = stmt.where(status_column == status)
    total = await count(session, stmt)
    rows = await session.execute(
        stmt.order_by(id_column.desc()).limit(page.limit).offset(page.offset)
    )
    items = [out(row) for row in rows.tuples()]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def database_answers(session: AsyncSession) -> None:
    """Ask the database the smallest query; raises whatever the driver raises."""
    await session.execute(sa.text("SELECT 1"))
