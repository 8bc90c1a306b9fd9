"""The live views: latest verdict per plot type, recent inferences, and the event stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, colors, count, file_url, plot_type_by_name
from hydra_api.deps import Reader, SessionDep, StateDep
from hydra_api.events import RuntimeBroadcaster, event_stream
from hydra_api.inputs import RunNumberQuery, UtcDatetime
from hydra_api.models import InferenceItem, Page, RuntimeItem
from hydra_common.db.schema import Plot, PlotType, RunHistory, RunTime, utcnow

router = APIRouter(tags=["runtime"])


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
        RuntimeItem(
            plot_type=name,
            plot_type_id=rt.plot_type_id,
            detector=detector,
            order_id=rt.order_id,
            run_period=rt.run_period,
            run_number=rt.run_number,
            chunk=rt.chunk,
            verdict=rt.verdict,
            confidence=rt.confidence,
            confirmed=rt.confirmed,
            model_id=rt.model_id,
            time=rt.updated_at,
            image_url=file_url(rt.image_path),
            heatmap_url=file_url(rt.heatmap_path),
            stale=rt.updated_at < stale_before,
            color=palette.get(rt.verdict, palette["NoModel"]),
        )
        for rt, name, detector in rows
    ]


async def load_runtime_items_by_ids(
    session: AsyncSession, plot_type_ids: list[int] | None, *, stale_minutes: float
) -> list[RuntimeItem]:
    """``load_runtime_items`` in the shape the event broadcaster calls."""
    return await load_runtime_items(session, plot_type_ids, stale_minutes)


@router.get("/api/runtime", response_model=Page[RuntimeItem])
async def list_runtime(
    session: SessionDep,
    state: StateDep,
    _reader: Reader,
    detector: Annotated[str | None, Query(max_length=64, description="Only this detector.")] = None,
) -> Page[RuntimeItem]:
    """The latest verdict of every plot type (one card each on the Run page)."""
    items = await load_runtime_items(session, None, state.settings.stale_minutes)
    if detector is not None:
        items = [i for i in items if i.detector == detector]
    return Page(items=items, total=len(items))


@router.get("/api/inferences", response_model=Page[InferenceItem])
async def list_inferences(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    since: Annotated[
        UtcDatetime | None, Query(description="Only inferences after this time (UTC if no zone).")
    ] = None,
    run_number: RunNumberQuery = None,
) -> Page[InferenceItem]:
    """Recent inferences (newest first) with every weight and the thresholds used.

    ``total`` is given when a plot type or a run narrows the list (an index range); over a
    whole hall's history (millions of rows) counting would cost more than the page, so it
    is left out and ``next`` says whether more follow.
    """
    # The page's ids first, from an index alone (newest first: (plot type,) created_at, id),
    # then only those rows: a deep page skips index entries, not whole rows.
    ids = sa.select(RunHistory.id)
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        ids = ids.where(RunHistory.plot_type_id == pt.id)
    if since is not None:
        ids = ids.where(RunHistory.created_at > _aware(since))
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
            id=rh.id,
            plot_type=name,
            plot_type_id=rh.plot_type_id,
            detector=detector,
            order_id=rh.order_id,
            run_period=rh.run_period,
            run_number=rh.run_number,
            chunk=rh.chunk,
            verdict=rh.verdict,
            confidence=rh.confidence,
            confirmed=rh.confirmed,
            model_id=rh.model_id,
            time=rh.created_at,
            image_url=file_url(image),
            heatmap_url=file_url(heatmap),
            stale=False,
            color=palette.get(rh.verdict, palette["NoModel"]),
            status=rh.status.value,
            weights={k: float(v) for k, v in (rh.weights or {}).items()},
            thresholds={k: float(v) for k, v in (rh.thresholds or {}).items()},
            error=rh.error,
        )
        for rh, name, detector, image, heatmap in rows
    ]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@router.get(
    "/api/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(state: StateDep, _reader: Reader) -> StreamingResponse:
    """Server-sent events for the Run page.

    Events are ``event: runtime`` with JSON data ``{"full": bool, "items": [RuntimeItem]}``:
    the first is the full snapshot, later ones carry only the plot types that changed.
    Comment lines (``: heartbeat``) keep idle connections open.
    """
    broadcaster: RuntimeBroadcaster = state.extras["broadcaster"]
    queue = broadcaster.subscribe()  # before the snapshot, so no change falls in between
    try:
        async with state.sessionmaker() as session:
            snapshot = await load_runtime_items(session, None, state.settings.stale_minutes)
    except BaseException:
        broadcaster.unsubscribe(queue)
        raise
    stream = event_stream(broadcaster, snapshot, state.settings.sse_heartbeat_seconds, queue)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
