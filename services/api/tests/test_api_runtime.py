"""The live views: runtime cards, inference history, the SSE stream, and metrics."""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hydra_api.domain.runtime import load_runtime_items_by_ids
from hydra_api.events import RuntimeBroadcaster
from hydra_api.main import create_app
from hydra_api.metrics import ApiMetrics
from hydra_common.db.schema import InferenceStatus, PlotType, Role, RunHistory, RunTime, utcnow
from hydra_common.ids import uuid7


def history(pt: PlotType, verdict: str = "Good", **kw: Any) -> RunHistory:
    """A run_history row of the plot type."""
    values: dict[str, Any] = {
        "order_id": uuid7(),
        "plot_type_id": pt.id,
        "status": InferenceStatus.OK,
        "verdict": verdict,
        "confidence": 0.9,
        "confirmed": True,
        "weights": {"Good": 0.9, "Bad": 0.1},
        "thresholds": {"Good": 0.5, "Bad": 0.6},
        "run_number": 5000,
        "chunk": 1,
    }
    values.update(kw)
    return RunHistory(**values)


async def write_runtime(api: Any, pt: PlotType, verdict: str, age: timedelta = timedelta()) -> str:
    """Record an inference and make it the plot type's current one (as the keeper does)."""
    async with api.session() as s:
        rh = history(pt, verdict, created_at=utcnow() - age)
        s.add(rh)
        await s.flush()
        rt = await s.get(RunTime, pt.id)
        if rt is None:
            rt = RunTime(plot_type_id=pt.id, run_history_id=rh.id, order_id=rh.order_id, verdict="")
            s.add(rt)
        rt.run_history_id = rh.id
        rt.order_id = rh.order_id
        rt.verdict = verdict
        rt.confidence = 0.9
        rt.confirmed = verdict == "Good"
        rt.run_number = 5000
        rt.chunk = 1
        rt.image_path = f"live/{pt.name}/{rh.order_id}.png"
        rt.heatmap_path = f"heatmaps/{pt.name}/{rh.order_id}.png" if verdict == "Bad" else None
        rt.updated_at = utcnow() - age
        await s.commit()
        return rh.order_id


async def test_runtime_cards_with_colour_and_stale_flag(api: Any) -> None:
    fresh = await api.plot_type(detector="FCAL")
    old = await api.plot_type(detector="FCAL")
    oid = await write_runtime(api, fresh, "Bad")
    await write_runtime(api, old, "Good", age=timedelta(hours=2))
    r = await api.client.get("/api/runtime", params={"detector": "FCAL"})
    assert r.status_code == 200
    items = {i["plot_type"]: i for i in r.json()["items"]}
    bad = items[fresh.name]
    assert bad["verdict"] == "Bad" and bad["color"] == "#d62828" and bad["stale"] is False
    assert bad["image_url"] == f"/api/files/live/{fresh.name}/{oid}.png"
    assert bad["heatmap_url"].startswith("/api/files/heatmaps/")
    assert bad["run_number"] == 5000 and bad["chunk"] == 1 and bad["confirmed"] is False
    assert items[old.name]["stale"] is True and items[old.name]["heatmap_url"] is None
    for key in ("plot_type", "detector", "confidence", "model_id", "time"):
        assert key in bad


async def test_cards_say_whether_a_model_classified_them(api: Any) -> None:
    """NoModel and Error are no classification: the API says so (``classified``), and the
    Run page shows neither a confidence nor "unconfirmed" for them."""
    det = api.unique("DET")
    types = {v: await api.plot_type(detector=det) for v in ("Good", "NoModel", "Error")}
    for verdict, pt in types.items():
        await write_runtime(api, pt, verdict)
    r = await api.client.get("/api/runtime", params={"detector": det})
    flags = {i["verdict"]: i["classified"] for i in r.json()["items"]}
    assert flags == {"Good": True, "NoModel": False, "Error": False}


async def test_ignored_plot_types_are_not_on_the_run_page(api: Any) -> None:
    pt = await api.plot_type(ignored=True)
    await write_runtime(api, pt, "Good")
    names = [i["plot_type"] for i in (await api.client.get("/api/runtime")).json()["items"]]
    assert pt.name not in names


async def test_inferences_filter_paginate_and_bound_limit(api: Any) -> None:
    pt = await api.plot_type()
    start = utcnow()
    await api.add(*(history(pt, "Good" if i % 2 else "Bad", chunk=i) for i in range(7)))
    r = await api.client.get("/api/inferences", params={"plot_type": pt.name, "limit": 3})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 7 and body["next"] == 3
    assert [i["chunk"] for i in body["items"]] == [6, 5, 4]  # newest first
    assert body["items"][0]["weights"] == {"Good": 0.9, "Bad": 0.1}
    assert body["items"][0]["thresholds"]["Bad"] == 0.6
    last = await api.client.get(
        "/api/inferences", params={"plot_type": pt.name, "limit": 3, "offset": 6}
    )
    assert len(last.json()["items"]) == 1 and last.json()["next"] is None
    since = await api.client.get(
        "/api/inferences",
        params={"plot_type": pt.name, "since": (start - timedelta(minutes=1)).isoformat()},
    )
    assert since.json()["total"] == 7
    future = await api.client.get(
        "/api/inferences",
        params={"plot_type": pt.name, "since": (utcnow() + timedelta(hours=1)).isoformat()},
    )
    assert future.json()["total"] == 0
    # The whole history is not counted (millions of rows in a hall): no total, a next page.
    everything = (await api.client.get("/api/inferences", params={"limit": 2})).json()
    assert everything["total"] is None and everything["next"] == 2
    assert len(everything["items"]) == 2
    for bad_limit in (0, 501):
        r = await api.client.get("/api/inferences", params={"limit": bad_limit})
        assert r.status_code == 422
    assert (await api.client.get("/api/inferences", params={"offset": -1})).status_code == 422
    assert (
        await api.client.get("/api/inferences", params={"plot_type": "nope"})
    ).status_code == 404


async def test_private_deployment_hides_live_views_from_anonymous(api_factory: Any) -> None:
    api = await api_factory(public_read=False)
    assert (await api.client.get("/api/runtime")).status_code == 401
    assert (await api.client.get("/api/health")).status_code == 200
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.get("/api/runtime")).status_code == 200


async def _next_event(lines: Any, event: str) -> dict[str, Any]:
    current = None
    async for line in lines:
        if line.startswith("event: "):
            current = line[len("event: ") :]
        elif line.startswith("data: ") and current == event:
            data: dict[str, Any] = json.loads(line[len("data: ") :])
            return data
    raise AssertionError("stream ended")


async def test_sse_delivers_runtime_event_after_a_run_time_write(
    api: Any, settings_factory: Any, serve: Any
) -> None:
    registry = CollectorRegistry()
    app = create_app(settings_factory(), registry)
    served = await serve(app)
    pt = await api.plot_type(detector="BCAL")
    try:
        async with (
            httpx.AsyncClient(base_url=served.url, timeout=30) as client,
            client.stream("GET", "/api/events") as resp,
        ):
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.aiter_lines()
            snapshot = await asyncio.wait_for(_next_event(lines, "runtime"), 30)
            assert snapshot["full"] is True
            assert pt.name not in [i["plot_type"] for i in snapshot["items"]]
            metrics = (await client.get("/metrics")).text
            assert "hydra_api_sse_clients 1.0" in metrics
            oid = await write_runtime(api, pt, "Bad")

            async def until_ours() -> dict[str, Any]:
                while True:
                    data = await _next_event(lines, "runtime")
                    if any(i["order_id"] == oid for i in data["items"]):
                        return data

            update = await asyncio.wait_for(until_ours(), 30)
            assert update["full"] is False
            item = next(i for i in update["items"] if i["order_id"] == oid)
            assert item["plot_type"] == pt.name and item["verdict"] == "Bad"
    finally:
        await served.stop()
    text = _metrics_text(registry)
    assert "hydra_api_sse_clients 0.0" in text


def _metrics_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_heartbeat_comments_on_idle_stream(
    api: Any, settings_factory: Any, serve: Any
) -> None:
    app = create_app(settings_factory(sse_heartbeat_seconds=0.2), CollectorRegistry())
    served = await serve(app)
    try:
        async with (
            httpx.AsyncClient(base_url=served.url, timeout=30) as client,
            client.stream("GET", "/api/events") as resp,
        ):
            seen = []
            async for line in resp.aiter_lines():
                seen.append(line)
                if line.startswith(": heartbeat"):
                    break
            assert any(line.startswith("event: runtime") for line in seen)
    finally:
        await served.stop()


@pytest.fixture
def counting_broadcaster(api: Any) -> tuple[RuntimeBroadcaster, dict[str, int]]:
    """A broadcaster on the app's database, and how many sessions (polls) it opened."""
    sessions = {"opened": 0}
    real = api.sessionmaker

    def counting() -> Any:
        sessions["opened"] += 1
        return real()

    broadcaster = RuntimeBroadcaster(
        counting,  # type: ignore[arg-type]  # a plain callable stands in for the sessionmaker
        functools.partial(load_runtime_items_by_ids, stale_minutes=10),
        ApiMetrics(CollectorRegistry()),
        poll_seconds=0.1,
    )
    return broadcaster, sessions


async def test_one_poll_query_serves_many_clients(
    api: Any, counting_broadcaster: tuple[RuntimeBroadcaster, dict[str, int]]
) -> None:
    broadcaster, sessions = counting_broadcaster
    pt = await api.plot_type()
    queues = [broadcaster.subscribe() for _ in range(5)]
    await broadcaster.poll_once()  # learns the state
    oid = await write_runtime(api, pt, "Good")
    await broadcaster.poll_once()
    assert sessions["opened"] == 2  # one per poll, whatever the number of clients
    for q in queues:
        items = q.get_nowait()
        assert items is not None
        assert [i.order_id for i in items if i.plot_type == pt.name] == [oid]
    await broadcaster.poll_once()  # nothing new: nothing sent
    assert all(q.empty() for q in queues)


async def test_no_poll_query_while_no_run_page_is_open(
    api: Any, counting_broadcaster: tuple[RuntimeBroadcaster, dict[str, int]]
) -> None:
    broadcaster, sessions = counting_broadcaster
    pt = await api.plot_type()
    await write_runtime(api, pt, "Bad")
    for _ in range(3):
        await broadcaster.poll_once()
    assert sessions["opened"] == 0  # idle: the database is not asked
    q = broadcaster.subscribe()
    oid = await write_runtime(api, pt, "Good")  # after the client subscribed: news
    await broadcaster.poll_once()
    assert sessions["opened"] == 1
    items = q.get_nowait()
    assert items is not None
    assert [i.order_id for i in items if i.plot_type == pt.name] == [oid]
    broadcaster.unsubscribe(q)
    await broadcaster.poll_once()
    assert sessions["opened"] == 1


async def test_metrics_use_route_templates(api: Any) -> None:
    await api.client.get("/api/models/999999999")
    await api.client.get("/api/runtime")
    text = (await api.client.get("/metrics")).text
    assert 'hydra_api_requests_total{method="GET",route="/api/models/{model_id}",status="404"}' in (
        text
    )
    assert "999999999" not in text
    assert "hydra_api_request_seconds_bucket" in text
    assert "hydra_api_sse_clients" in text


async def test_health(api: Any) -> None:
    r = await api.client.get("/api/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_health_reports_unreachable_database(api_factory: Any) -> None:
    api = await api_factory(database_url="mysql+asyncmy://root@127.0.0.1:1/none")
    r = await api.client.get("/api/health")
    assert r.status_code == 503 and r.json()["detail"] == "database unreachable"
