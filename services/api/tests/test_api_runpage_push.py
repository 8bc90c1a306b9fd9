"""The Run page pushed from the keeper's commit: a real keeper's ``WatchCommits`` notice
wakes the API's reader, so a committed verdict reaches an SSE client without the
fallback poll (set here to an hour, far beyond the test's limits)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, order_pb2, report_pb2
from prometheus_client import CollectorRegistry

from hydra_api.main import create_app
from hydra_common.db.schema import Model, utcnow
from hydra_common.grpcserver import channel
from hydra_common.ids import uuid7
from hydra_keeper.service import KeeperService
from hydra_keeper.settings import KeeperSettings
from hydra_testsupport.polling import eventually_async

HOUR = 3600.0


def _report(plot_type: str, model_id: int) -> report_pb2.Report:
    now = time.time_ns()
    order = order_pb2.InferenceOrder(
        order_id=uuid7(),
        plot_type=plot_type,
        run_period="RunPeriod-2025-01",
        run_number=7100,
        chunk=1,
        source_path=f"RunPeriod-2025-01/Run7100/{plot_type}.png",
        stages=order_pb2.StageTimestamps(file_ns=now, fed_ns=now, reported_ns=now),
    )
    report = report_pb2.Report(
        order=order,
        status=report_pb2.REPORT_STATUS_OK,
        model_id=model_id,
        model_name=plot_type,
        model_version=1,
        predictor_id="predictor-test",
    )
    report.labels.extend(["Good", "Bad"])
    report.weights.extend([0.1, 0.9])
    return report


async def _events(lines: Any) -> Any:
    current = None
    async for line in lines:
        if line.startswith("event: "):
            current = line[len("event: ") :]
        elif line.startswith("data: ") and current == "runtime":
            yield json.loads(line[len("data: ") :])


async def _plot_type_and_keeper(
    api: Any, mysql_url: str, tmp_path: Path
) -> tuple[Any, Model, KeeperService]:
    """A plot type with a model, and a started keeper on the test database."""
    pt = await api.plot_type(detector="FCAL")
    model = Model(
        plot_type_id=pt.id,
        name=pt.name,
        version=1,
        architecture="small",
        label_order=["Good", "Bad", "NoData"],
        created_at=utcnow(),
    )
    await api.add(model)
    keeper = KeeperService(
        KeeperSettings(
            database_url=mysql_url,
            storage_dir=tmp_path / "storage",
            data_dir=tmp_path,
            keeper_host="127.0.0.1",
            keeper_port=0,
            metrics_port=0,
            commit_max_wait_ms=5,
            keeper_refresh_seconds=0.5,
            heartbeat_seconds=HOUR,
            grace_seconds=5,
        ),
        CollectorRegistry(),
    )
    await keeper.start()
    return pt, model, keeper


async def _record(port: int, report: report_pb2.Report) -> None:
    """Send one report to the keeper and wait for its acknowledgement (committed)."""
    async with channel(f"127.0.0.1:{port}") as ch:
        call = keeper_pb2_grpc.KeeperServiceStub(ch).Record()
        await call.write(keeper_pb2.RecordRequest(reports=[report]))
        ack = await asyncio.wait_for(call.read(), 60)
        assert list(ack.order_ids) == [report.order.order_id]
        await call.done_writing()


async def _until_order(events: AsyncIterator[dict[str, Any]], order_id: str) -> dict[str, Any]:
    """The first runtime event that carries this order's verdict."""
    async for data in events:
        if any(i["order_id"] == order_id for i in data["items"]):
            return data
    raise AssertionError("stream ended")


async def test_committed_verdict_reaches_the_run_page_without_the_fallback_poll(
    api: Any, settings_factory: Any, mysql_url: str, tmp_path: Path, serve: Any
) -> None:
    pt, model, keeper = await _plot_type_and_keeper(api, mysql_url, tmp_path)
    app = create_app(
        settings_factory(sse_poll_seconds=HOUR, keeper_address=f"127.0.0.1:{keeper.port}"),
        CollectorRegistry(),
    )
    served = await serve(app)
    broadcaster = app.state.hydra.running_broadcaster()
    try:
        async with (
            httpx.AsyncClient(base_url=served.url, timeout=60) as client,
            client.stream("GET", "/api/events") as resp,
        ):
            assert resp.status_code == 200
            events = _events(resp.aiter_lines())
            snapshot = await asyncio.wait_for(anext(events), 60)
            assert snapshot["full"] is True
            # A client is connected: the API subscribes to the keeper's notices.
            await eventually_async(lambda: keeper.notifier.subscribers == 1, "API subscribed")
            polls_before = broadcaster.polls
            report = _report(pt.name, model.id)
            await _record(keeper.port, report)
            update = await asyncio.wait_for(_until_order(events, report.order.order_id), 60)
            item = next(i for i in update["items"] if i["plot_type"] == pt.name)
            assert item["verdict"] == "Bad" and update["full"] is False
            # Read because of the keeper's notice, not the hourly fallback.
            assert broadcaster.notices >= 1 and broadcaster.polls > polls_before
    finally:
        await served.stop()
        await keeper.stop()


async def test_the_api_listens_to_the_keeper_only_while_a_run_page_is_open(
    api: Any, settings_factory: Any, mysql_url: str, tmp_path: Path, serve: Any
) -> None:
    """No SSE client, no notices: the API closes the keeper's stream at the first notice
    after its last client left (a commit then costs neither of them anything for the Run
    page), and opens it again for the next client, who still gets the commits pushed."""
    pt, model, keeper = await _plot_type_and_keeper(api, mysql_url, tmp_path)
    app = create_app(
        settings_factory(sse_poll_seconds=HOUR, keeper_address=f"127.0.0.1:{keeper.port}"),
        CollectorRegistry(),
    )
    served = await serve(app)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
            for visit in range(2):
                async with client.stream("GET", "/api/events") as resp:
                    assert resp.status_code == 200
                    events = _events(resp.aiter_lines())
                    assert (await asyncio.wait_for(anext(events), 60))["full"] is True
                    await eventually_async(
                        lambda: keeper.notifier.subscribers == 1, f"subscribed ({visit})"
                    )
                    report = _report(pt.name, model.id)
                    await _record(keeper.port, report)
                    await asyncio.wait_for(_until_order(events, report.order.order_id), 60)
                # The page closed: the next commit's notice ends the stream.
                await eventually_async(
                    lambda: app.state.hydra.running_broadcaster().clients == 0, "client gone"
                )
                published = keeper.notifier.published
                await _record(keeper.port, _report(pt.name, model.id))
                await eventually_async(
                    lambda: keeper.notifier.subscribers == 0, f"unsubscribed ({visit})"
                )
                assert keeper.notifier.published == published + 1
                # Nobody listens now: a further commit sends no notice at all.
                await _record(keeper.port, _report(pt.name, model.id))
                assert keeper.notifier.published == published + 1
    finally:
        await served.stop()
        await keeper.stop()
