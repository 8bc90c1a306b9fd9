"""The live views' queries: the latest verdict per plot type (Run-page cards) and recent
inferences."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, file_url
from hydra_api.domain.queries import aware, colors, count, plot_type_by_name
from hydra_api.models import InferenceItem, Page, RuntimeItem
from hydra_common.db.schema import Plot, PlotType, RunHistory, RunTime, utcnow
from hydra_common.labels import NO_MODEL, SENTINEL_VERDICTS


def _card(
    row: RunTime | RunHistory,
    name: str,
    detector: str,
    image_path: str | None,
    heatmap_path: str | None,
    palette: dict[str, str],
    stale_before: datetime | None = None,
) -> RuntimeItem:
    """A card of a plot type's latest verdict or of one inference (never stale: history)."""
    time = row.updated_at if isinstance(row, RunTime) else row.created_at
    return RuntimeItem(
        plot_type=name,
        plot_type_id=row.plot_type_id,
        detector=detector,
        order_id=row.order_id,
        run_period=row.run_period,
        run_number=row.run_number,
        chunk=row.chunk,
        verdict=row.verdict,
        classified=row.verdict not in SENTINEL_VERDICTS,
        confidence=row.confidence,
        confirmed=row.confirmed,
        model_id=row.model_id,
        time=time,
        image_url=file_url(image_path),
        heatmap_url=file_url(heatmap_path),
        stale=stale_before is not None and time < stale_before,
        color=palette.get(row.verdict, palette[NO_MODEL]),
    )


async def load_runtime_items(
    session: AsyncSession, plot_type_ids: list[int] | None, stale_minutes: float
) -> list[RuntimeItem]:
    """Run-page cards (all, or those of the given plot types), worst first is the UI's job."""
    stmt = (
        sa.select(RunTime, PlotType.name, PlotType.detector)
        .join(PlotType, PlotType.id == RunTime.plot_type_id)
        .where(PlotType.ignored.is_(False))
        .order_by(PlotType.detector, PlotType.name)
    )
    if plot_type_ids is not None:
        stmt = stmt.where(RunTime.plot_type_id.in_(plot_type_ids))
    rows = (await session.execute(stmt)).tuples().all()
    palette = await colors(session)
    stale_before = utcnow() - timedelta(minutes=stale_minutes)
    return [
        _card(rt, name, detector, rt.image_path, rt.heatmap_path, palette, stale_before)
        for rt, name, detector in rows
    ]


async def load_runtime_items_by_ids(
    session: AsyncSession, plot_type_ids: list[int] | None, *, stale_minutes: float
) -> list[RuntimeItem]:
    """``load_runtime_items`` in the shape the event broadcaster calls."""
    return await load_runtime_items(session, plot_type_ids, stale_minutes)


async def inferences(
    session: AsyncSession,
    page: Pagination,
    plot_type: str | None = None,
    since: datetime | None = None,
    run_number: int | None = None,
) -> Page[InferenceItem]:
    """Recent inferences (newest first) with every weight and the thresholds used; counted
    only when a plot type or a run narrows them (an index range): over a whole hall's
    history counting would cost more than the page."""
    # The page's ids first, from an index alone (newest first: (plot type,) created_at, id),
    # then only those rows: a deep page skips index entries, not whole rows.
    ids = sa.select(RunHistory.id)
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        ids = ids.where(RunHistory.plot_type_id == pt.id)
    if since is not None:
        ids = ids.where(RunHistory.created_at > aware(since))
    if run_number is not None:
        ids = ids.where(RunHistory.run_number == run_number)
    total = None
    if plot_type is not None or run_number is not None:
        total = await count(session, ids)
    newest = (RunHistory.created_at.desc(), RunHistory.id.desc())
    page_ids = ids.order_by(*newest).limit(page.limit).offset(page.offset).subquery()
    stmt = (
        sa.select(RunHistory, PlotType.name, PlotType.detector, Plot.image_path, Plot.heatmap_path)
        .join(page_ids, page_ids.c.id == RunHistory.id)
        .join(PlotType, PlotType.id == RunHistory.plot_type_id)
        .outerjoin(Plot, Plot.id == RunHistory.plot_id)
        .order_by(*newest)
    )
    rows = (await session.execute(stmt)).tuples().all()
    palette = await colors(session)
    items = [
        InferenceItem(
            **_card(rh, name, detector, image, heatmap, palette).model_dump(),
            id=rh.id,
            status=rh.status.value,
            weights={k: float(v) for k, v in (rh.weights or {}).items()},
            thresholds={k: float(v) for k, v in (rh.thresholds or {}).items()},
            error=rh.error,
        )
        for rh, name, detector, image, heatmap in rows
    ]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))
