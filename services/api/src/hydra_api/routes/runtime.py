"""The live views: latest verdict per plot type, recent inferences, and the event stream."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from hydra_api.common import PageDep
from hydra_api.deps import Reader, SessionDep, StateDep
from hydra_api.domain import runtime
from hydra_api.events import event_stream
from hydra_api.inputs import RunNumberQuery, UtcDatetime
from hydra_api.models import InferenceItem, Page, RuntimeItem

router = APIRouter(tags=["runtime"])


@router.get("/api/runtime", response_model=Page[RuntimeItem])
async def list_runtime(
    session: SessionDep,
    state: StateDep,
    _reader: Reader,
    detector: Annotated[str | None, Query(max_length=64, description="Only this detector.")] = None,
) -> Page[RuntimeItem]:
    """The latest verdict of every plot type (one card each on the Run page)."""
    items = await runtime.load_runtime_items(session, None, state.settings.stale_minutes)
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
    return await runtime.inferences(session, page, plot_type, since, run_number)


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
    broadcaster = state.running_broadcaster()
    queue = broadcaster.subscribe()  # before the snapshot, so no change falls in between
    try:
        async with state.sessionmaker() as session:
            snapshot = await runtime.load_runtime_items(session, None, state.settings.stale_minutes)
    except BaseException:
        broadcaster.unsubscribe(queue)
        raise
    stream = event_stream(broadcaster, snapshot, state.settings.sse_heartbeat_seconds, queue)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
