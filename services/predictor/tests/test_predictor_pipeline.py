"""The predictor end to end: a fake balancer and keeper (real grpc.aio servicers on loopback,
written on the real generated stubs), the real bundled model server with real SavedModels,
and active models registered in the real MariaDB.

The fakes stand in for services written elsewhere so these tests pin the predictor's side of
the contract; they check it themselves (credits never exceeded, done only after the keeper's
acknowledgement). One model server serves the whole module: TensorFlow is the slow part.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import sqlalchemy as sa
from hydra.v1 import (
    balancer_pb2,
    balancer_pb2_grpc,
    keeper_pb2,
    keeper_pb2_grpc,
    order_pb2,
    report_pb2,
)
from PIL import Image
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import (
    InferenceStatus,
    Model,
    ModelShadow,
    PlotType,
    RunHistory,
    utcnow,
)
from hydra_common.grpcserver import RunningServer, start_server
from hydra_common.ids import uuid7
from hydra_common.launcher import free_port
from hydra_common.modelconfig import ModelEntry, render, write_if_changed
from hydra_predictor.catalog import ActiveModel
from hydra_predictor.inference import ModelClient
from hydra_predictor.metrics import PredictorMetrics
from hydra_predictor.service import PredictorService
from hydra_predictor.settings import PredictorSettings

tf = pytest.importorskip("tensorflow")

from hydra_modelserver.service import ModelServerService  # noqa: E402
from hydra_modelserver.settings import ModelServerSettings  # noqa: E402
from hydra_testsupport import eventually_async as eventually  # noqa: E402
from hydra_testsupport.rows import inserted_id  # noqa: E402
from hydra_trainer.export import export_untrained_model  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.mysql]


def make_png(seed: int, width: int = 64, height: int = 48) -> bytes:
    """A real PNG: random noise, or a flat colour for seeds below 0."""
    rng = np.random.default_rng(abs(seed))
    if seed < 0:
        pixels = np.full((height, width, 3), rng.integers(0, 255, size=3), dtype=np.uint8)
    else:
        pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def make_order(plot_type: str, image: bytes) -> order_pb2.InferenceOrder:
    """An order as the feeder would send it."""
    return order_pb2.InferenceOrder(
        order_id=uuid7(), plot_type=plot_type, image=image, chunk=-1, run_number=4242
    )


class FakeKeeper(keeper_pb2_grpc.KeeperServiceServicer):
    """Records reports; acknowledges them when ``gate`` is open; can break streams."""

    def __init__(self) -> None:
        self.reports: dict[str, report_pb2.Report] = {}
        self.received: list[str] = []  # every id received, repeats included
        self.messages: list[int] = []  # reports per RecordRequest
        self.acked: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.break_streams = 0  # abort this many streams after their first message
        self.streams = 0

    async def Record(
        self,
        request_iterator: AsyncIterator[keeper_pb2.RecordRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[keeper_pb2.RecordResponse]:
        """Record a batch, then (gate open) acknowledge its ids."""
        self.streams += 1
        async for request in request_iterator:
            ids = [r.order.order_id for r in request.reports]
            self.messages.append(len(ids))
            for report in request.reports:
                self.reports[report.order.order_id] = report
                self.received.append(report.order.order_id)
            if self.break_streams > 0:
                self.break_streams -= 1
                await context.abort(grpc.StatusCode.UNAVAILABLE, "keeper restarting")
            await self.gate.wait()
            self.acked.update(ids)
            yield keeper_pb2.RecordResponse(order_ids=ids)


class FakeBalancer(balancer_pb2_grpc.BalancerServiceServicer):
    """Hands out queued orders within the credits granted; checks the predictor's side."""

    def __init__(self, keeper: FakeKeeper) -> None:
        self.keeper = keeper
        self.queue: deque[order_pb2.InferenceOrder] = deque()
        self.done: list[str] = []
        self.done_before_ack: list[str] = []
        self.max_outstanding = 0  # most credits granted and not returned by a done notice
        self.predictor_ids: list[str] = []
        self.streams = 0
        self.wake = asyncio.Event()

    def add(self, orders: list[order_pb2.InferenceOrder]) -> None:
        """Queue orders for the next predictor with credits."""
        self.queue.extend(orders)
        self.wake.set()

    async def Work(
        self,
        request_iterator: AsyncIterator[balancer_pb2.WorkRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[balancer_pb2.WorkResponse]:
        """Send orders, never more than the credits granted on this stream."""
        self.streams += 1
        granted = done = 0
        sent: dict[str, order_pb2.InferenceOrder] = {}

        async def read() -> None:
            nonlocal granted, done
            try:
                async for request in request_iterator:
                    if request.predictor_id:
                        self.predictor_ids.append(request.predictor_id)
                    granted += request.credits
                    for order_id in request.done:
                        if order_id not in self.keeper.acked:
                            self.done_before_ack.append(order_id)
                        self.done.append(order_id)
                        sent.pop(order_id, None)
                        done += 1
                    self.max_outstanding = max(self.max_outstanding, granted - done)
                    self.wake.set()
            finally:
                self.wake.set()

        reader = asyncio.create_task(read())
        try:
            while not reader.done():
                await self.wake.wait()
                self.wake.clear()
                room = granted - done - len(sent)
                batch = []
                while self.queue and room > 0:
                    order = self.queue.popleft()
                    batch.append(order)
                    sent[order.order_id] = order
                    room -= 1
                if batch:
                    yield balancer_pb2.WorkResponse(orders=batch)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await reader
            # As the real balancer does: what the predictor did not finish goes back.
            self.queue.extendleft(reversed(list(sent.values())))


@dataclass
class Fakes:
    """A running fake balancer and keeper."""

    balancer: FakeBalancer
    keeper: FakeKeeper
    balancer_server: RunningServer
    keeper_server: RunningServer

    @property
    def balancer_address(self) -> str:
        return f"127.0.0.1:{self.balancer_server.port}"

    @property
    def keeper_address(self) -> str:
        return f"127.0.0.1:{self.keeper_server.port}"


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    """A fake balancer and fake keeper, each a real gRPC server on a free port."""
    keeper = FakeKeeper()
    balancer = FakeBalancer(keeper)
    keeper_server = await start_server(
        [lambda s: keeper_pb2_grpc.add_KeeperServiceServicer_to_server(keeper, s)],
        ["hydra.v1.KeeperService"],
    )
    balancer_server = await start_server(
        [lambda s: balancer_pb2_grpc.add_BalancerServiceServicer_to_server(balancer, s)],
        ["hydra.v1.BalancerService"],
    )
    yield Fakes(balancer, keeper, balancer_server, keeper_server)
    keeper.gate.set()
    await balancer_server.stop(0)
    await keeper_server.stop(0)


LABELS = ["Good", "Bad", "NoData"]


@dataclass
class Heads:
    """Plot types registered in the database and the models serving them."""

    url: str
    model_dir: Path
    plot_types: dict[str, int]  # plot type name -> id
    models: dict[str, int]  # "<model name>:<version>" -> models.id

    async def activate(self, plot_type: str, model_key: str | None) -> None:
        """Promote a model for a plot type (None: no active model)."""
        engine = make_engine(self.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.update(PlotType)
                    .where(PlotType.id == self.plot_types[plot_type])
                    .values(active_model_id=self.models[model_key] if model_key else None)
                )
        finally:
            await engine.dispose()


def copy_version(model_dir: Path, source: str, target: str) -> None:
    """A second model (or version) with the same graph: loading is cheaper than exporting."""
    src_name, src_version = source.split(":")
    dst_name, dst_version = target.split(":")
    shutil.copytree(model_dir / src_name / src_version, model_dir / dst_name / dst_version)


async def register_heads(
    url: str,
    model_dir: Path,
    plot_types: list[str],
    models: dict[str, list[str]],
) -> Heads:
    """Insert plot types and models (``name:version`` -> label order) into the database."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            ids: dict[str, int] = {}
            for name in plot_types:
                result = await conn.execute(sa.insert(PlotType).values(name=name))
                ids[name] = inserted_id(result)
            model_ids: dict[str, int] = {}
            first_type = ids[plot_types[0]]
            for key, labels in models.items():
                name, version = key.split(":")
                result = await conn.execute(
                    sa.insert(Model).values(
                        plot_type_id=first_type,
                        name=name,
                        version=int(version),
                        architecture="small",
                        label_order=labels,
                    )
                )
                model_ids[key] = inserted_id(result)
    finally:
        await engine.dispose()
    return Heads(url, model_dir, ids, model_ids)


def unique(prefix: str) -> str:
    """A name no other test in the shared database uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# --- the model server and the database, once per module --------------------------------


@dataclass
class Stack:
    """The running model server and the plot types registered for this module."""

    server: ModelServerService
    heads: Heads
    alpha: str  # labels without an alarm label: never a heat map
    beta: str  # "Bad" where the reference image's top output is
    pa: str  # plot type served by alpha:1
    pb: str  # plot type served by beta:1
    pn: str  # plot type without a model
    promo: str  # plot type served by alpha:1, promoted to alpha:2 in a test

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, mysql_url: str) -> AsyncIterator[Stack]:
    model_dir = tmp_path_factory.mktemp("predictor-models")
    alpha, beta = unique("alpha"), unique("beta")
    export_untrained_model(model_dir, alpha, 1, LABELS, input_size=32)
    copy_version(model_dir, f"{alpha}:1", f"{alpha}:2")
    copy_version(model_dir, f"{alpha}:1", f"{beta}:1")
    server = ModelServerService(
        ModelServerSettings(
            model_dir=model_dir,
            model_server_host="127.0.0.1",
            model_server_port=0,
            model_poll_seconds=60,
            grace_seconds=1,
        ),
        CollectorRegistry(),
    )
    await server.start()
    # Put "Bad" where the untrained model's top output for the reference image is.
    client = ModelClient(f"127.0.0.1:{server.port}", 60, PredictorMetrics(CollectorRegistry()))
    probe = ActiveModel(0, alpha, 1, tuple(LABELS), frozenset())
    top = int(
        np.argmax((await client.predict(probe, "serving_default", [IMAGES[0]], "weights"))[0])
    )
    await client.close()
    beta_labels = ["Good", "NoData", "Acceptable"]
    beta_labels[top] = "Bad"
    pa, pb, pn, promo = unique("pa"), unique("pb"), unique("pn"), unique("promo")
    heads = await register_heads(
        mysql_url,
        model_dir,
        [pa, pb, pn, promo],
        {
            f"{alpha}:1": ["Good", "NoData", "Acceptable"],
            f"{alpha}:2": ["Good", "NoData", "Acceptable"],
            f"{beta}:1": beta_labels,
        },
    )
    await heads.activate(pa, f"{alpha}:1")
    await heads.activate(pb, f"{beta}:1")
    await heads.activate(promo, f"{alpha}:1")
    yield Stack(server, heads, alpha, beta, pa, pb, pn, promo)
    await server.stop()


IMAGES = [make_png(0), make_png(-1), make_png(-2, 30, 90), make_png(3), make_png(-4), make_png(5)]


@contextlib.asynccontextmanager
async def running_predictor(
    stack: Stack, fakes: Fakes | None, **overrides: object
) -> AsyncIterator[PredictorService]:
    """A predictor wired to the fakes and the model server; its Predict calls are recorded."""
    options: dict[str, object] = {
        "database_url": stack.heads.url,
        "balancer_address": fakes.balancer_address if fakes else "",
        "keeper_address": fakes.keeper_address if fakes else "",
        "model_server_address": stack.address,
        "max_batch": 4,
        "max_wait_ms": 50,
        "credits": 8,
        "model_refresh_seconds": 0.2,
        "predict_timeout_seconds": 30,
        "grace_seconds": 5,
        "predictor_id": "test-predictor",
        **overrides,
    }
    predictor = PredictorService(PredictorSettings(**options), CollectorRegistry())  # type: ignore[arg-type]
    calls: list[tuple[str, int, str, int]] = []
    real_predict = predictor.client.predict

    async def recording_predict(model, signature, images, output, **kw):  # type: ignore[no-untyped-def]
        calls.append((model.name, model.version, signature, len(images)))
        return await real_predict(model, signature, images, output, **kw)

    predictor.client.predict = recording_predict  # type: ignore[method-assign]
    predictor.calls = calls  # type: ignore[attr-defined]
    await predictor.start()
    try:
        yield predictor
    finally:
        await predictor.stop()


# --- tests --------------------------------------------------------------------------------


async def test_batches_per_model_reports_and_no_model(stack: Stack, fakes: Fakes) -> None:
    orders = []
    for i in range(12):
        orders.append(make_order(stack.pa, IMAGES[i % len(IMAGES)]))
        orders.append(make_order(stack.pb, IMAGES[i % len(IMAGES)]))
        if i % 3 == 0:
            orders.append(make_order(stack.pn, IMAGES[i % len(IMAGES)]))
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes) as predictor:
        await eventually(lambda: len(fakes.balancer.done) >= len(orders))
        calls = list(predictor.calls)  # type: ignore[attr-defined]
        registry = predictor.metrics

    ids = {o.order_id for o in orders}
    assert set(fakes.balancer.done) == ids
    assert fakes.balancer.done_before_ack == []
    assert fakes.balancer.max_outstanding <= 8
    assert fakes.balancer.predictor_ids[:1] == ["test-predictor"]

    # Batches: one model per call, never above max_batch, and batching did happen.
    plain = [c for c in calls if c[2] == "serving_default"]
    assert all(1 <= c[3] <= 4 for c in plain)
    per_model: dict[str, int] = {}
    for name, _version, _sig, n in plain:
        per_model[name] = per_model.get(name, 0) + n
    assert per_model == {stack.alpha: 12, stack.beta: 12}
    assert max(c[3] for c in plain) > 1

    reports = {i: fakes.keeper.reports[i] for i in ids}
    bad = 0
    for order in orders:
        report = reports[order.order_id]
        assert report.order.order_id == order.order_id
        assert report.order.image == order.image
        assert report.predictor_id == "test-predictor"
        if order.plot_type == stack.pn:
            assert report.status == report_pb2.REPORT_STATUS_NO_MODEL
            assert report.model_id == 0 and not report.weights
            continue
        assert report.status == report_pb2.REPORT_STATUS_OK, report.error
        model_key = f"{stack.alpha}:1" if order.plot_type == stack.pa else f"{stack.beta}:1"
        assert report.model_id == stack.heads.models[model_key]
        assert report.model_version == 1
        assert len(report.labels) == len(report.weights) == 3
        assert abs(sum(report.weights) - 1.0) < 1e-4
        stages = report.order.stages
        assert 0 < stages.predict_start_ns <= stages.predict_end_ns <= stages.reported_ns
        verdict = report.labels[int(np.argmax(report.weights))]
        if verdict == "Bad":
            bad += 1
            heat = report.heat_map
            assert heat.height == heat.width == 32
            assert len(heat.values) == 32 * 32
            assert all(0.0 <= v <= 1.0 for v in heat.values)
        else:
            assert not report.HasField("heat_map")
    # The reference image is Bad under beta, by construction; explain saw only Bad images.
    assert bad >= 2
    explained = sum(c[3] for c in calls if c[2] == "explain")
    assert explained == bad
    assert all(c[0] == stack.beta for c in calls if c[2] == "explain")

    assert registry.reports.labels("ok")._value.get() == 24
    assert registry.reports.labels("no_model")._value.get() == 4


async def _shadowed_plot_type(stack: Stack, shadow_key: str) -> str:
    """A new plot type served by alpha:1 with ``shadow_key`` in shadow."""
    name = unique("shadowed")
    engine = make_engine(stack.heads.url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                sa.insert(PlotType).values(
                    name=name, active_model_id=stack.heads.models[f"{stack.alpha}:1"]
                )
            )
            pid = inserted_id(result)
            if shadow_key not in stack.heads.models:  # a model the server does not have
                model_name, version = shadow_key.split(":")
                added = await conn.execute(
                    sa.insert(Model).values(
                        plot_type_id=pid,
                        name=model_name,
                        version=int(version),
                        architecture="small",
                        label_order=LABELS,
                    )
                )
                stack.heads.models[shadow_key] = inserted_id(added)
            await conn.execute(
                sa.insert(ModelShadow).values(
                    plot_type_id=pid,
                    model_id=stack.heads.models[shadow_key],
                    started_by="test",
                    started_at=utcnow(),
                )
            )
    finally:
        await engine.dispose()
    return name


async def test_a_shadow_model_runs_on_the_same_batches_and_changes_no_verdict(
    stack: Stack, fakes: Fakes
) -> None:
    shadowed = await _shadowed_plot_type(stack, f"{stack.beta}:1")
    broken = await _shadowed_plot_type(stack, f"{stack.alpha}:99")  # not on the model server
    plain = [make_order(stack.pa, IMAGES[i]) for i in range(4)]
    watched = [make_order(shadowed, IMAGES[i]) for i in range(4)]
    failing = [make_order(broken, IMAGES[i]) for i in range(2)]
    fakes.balancer.add(plain + watched + failing)
    async with running_predictor(stack, fakes) as predictor:
        await eventually(lambda: len(fakes.balancer.done) >= 10)
        calls = list(predictor.calls)  # type: ignore[attr-defined]
        metrics = predictor.metrics
    beta_id = stack.heads.models[f"{stack.beta}:1"]
    for same, order in zip(plain, watched, strict=True):
        report = fakes.keeper.reports[order.order_id]
        # The verdict is the active model's, weight for weight.
        assert report.status == report_pb2.REPORT_STATUS_OK
        assert (report.model_name, report.model_version) == (stack.alpha, 1)
        assert list(report.weights) == list(fakes.keeper.reports[same.order_id].weights)
        assert not report.HasField("heat_map")  # alpha has no alarm label
        shadow = report.shadow
        assert (shadow.model_id, shadow.model_name, shadow.status) == (
            beta_id,
            stack.beta,
            report_pb2.REPORT_STATUS_OK,
        )
        assert len(shadow.labels) == len(shadow.weights) == 3 and "Bad" in shadow.labels
        assert shadow.seconds_per_image > 0 and shadow.active_seconds_per_image > 0
        assert not fakes.keeper.reports[same.order_id].HasField("shadow")
    # The shadow ran on the active model's batches: no more images than they had.
    assert sum(c[3] for c in calls if c[0] == stack.beta) == 4
    for order in failing:  # a shadow model the server lacks fails alone, at once
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_OK
        assert report.shadow.status == report_pb2.REPORT_STATUS_ERROR
        assert "NOT_FOUND" in report.shadow.error
    assert metrics.shadow_results.labels("ok")._value.get() == 4
    assert metrics.shadow_results.labels("error")._value.get() == 2
    assert metrics.model_server_errors._value.get() == 0  # a shadow's failure pages no one


async def test_done_only_after_keeper_acknowledged(stack: Stack, fakes: Fakes) -> None:
    fakes.keeper.gate.clear()
    orders = [make_order(stack.pa, IMAGES[i]) for i in range(3)]
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes):
        await eventually(lambda: len(set(fakes.keeper.received)) >= 3)
        await asyncio.sleep(0.3)
        assert fakes.balancer.done == []
        fakes.keeper.gate.set()
        await eventually(lambda: len(fakes.balancer.done) >= 3)
    assert sorted(fakes.balancer.done) == sorted(o.order_id for o in orders)
    assert fakes.balancer.done_before_ack == []


async def test_keeper_stream_breaks_and_reports_are_sent_again(stack: Stack, fakes: Fakes) -> None:
    fakes.keeper.break_streams = 1
    orders = [make_order(stack.pn, IMAGES[0]) for _ in range(5)]
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes):
        await eventually(lambda: len(fakes.balancer.done) >= 5)
    assert sorted(fakes.balancer.done) == sorted(o.order_id for o in orders)
    assert fakes.keeper.streams >= 2
    first_message = fakes.keeper.received[: fakes.keeper.messages[0]]
    assert all(fakes.keeper.received.count(i) >= 2 for i in first_message)
    assert fakes.balancer.done_before_ack == []


async def test_balancer_stream_breaks_and_nothing_is_lost(stack: Stack, fakes: Fakes) -> None:
    fakes.keeper.gate.clear()  # hold every order in the predictor when the stream breaks
    orders = [make_order(stack.pa, IMAGES[i % len(IMAGES)]) for i in range(10)]
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes, credits=4) as predictor:
        await eventually(lambda: len(predictor.held) == 4)
        port = fakes.balancer_server.port
        await fakes.balancer_server.stop(0)
        await eventually(lambda: not predictor.connected.is_set())
        fakes.balancer_server = await start_server(
            [lambda s: balancer_pb2_grpc.add_BalancerServiceServicer_to_server(fakes.balancer, s)],
            ["hydra.v1.BalancerService"],
            port=port,
        )
        fakes.keeper.gate.set()
        await eventually(lambda: set(fakes.balancer.done) >= {o.order_id for o in orders})
    assert fakes.balancer.streams >= 2
    assert not fakes.balancer.queue
    assert fakes.balancer.done_before_ack == []
    assert fakes.balancer.max_outstanding <= 4


async def test_model_server_down_gives_error_reports(stack: Stack, fakes: Fakes) -> None:
    orders = [make_order(stack.pa, IMAGES[i]) for i in range(3)]
    no_model = make_order(stack.pn, IMAGES[0])
    fakes.balancer.add([*orders, no_model])
    address = f"127.0.0.1:{free_port()}"
    async with running_predictor(
        stack,
        fakes,
        model_server_address=address,
        predict_timeout_seconds=10,
        model_server_retry_seconds=0,
    ) as predictor:
        await eventually(lambda: len(fakes.balancer.done) >= 4)
        errors = predictor.metrics.model_server_errors._value.get()
    for order in orders:
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_ERROR
        assert "UNAVAILABLE" in report.error
        assert report.model_name == stack.alpha and report.model_version == 1
    assert fakes.keeper.reports[no_model.order_id].status == report_pb2.REPORT_STATUS_NO_MODEL
    assert errors >= 1


async def test_an_undecodable_image_fails_alone_not_its_batch(stack: Stack, fakes: Fakes) -> None:
    # The feeder checks images, but a model server may still refuse one (a codec the model
    # lacks, a crafted stream): the batch is halved until the bad image is alone.
    good = [make_order(stack.pa, IMAGES[i % len(IMAGES)]) for i in range(7)]
    bad = make_order(stack.pa, b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    orders = [*good[:3], bad, *good[3:]]
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes) as predictor:
        await eventually(lambda: len(fakes.balancer.done) >= len(orders))
        calls = list(predictor.calls)  # type: ignore[attr-defined]
    assert set(fakes.balancer.done) == {o.order_id for o in orders}
    failed = fakes.keeper.reports[bad.order_id]
    assert failed.status == report_pb2.REPORT_STATUS_ERROR
    assert "INVALID_ARGUMENT" in failed.error
    for order in good:
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_OK, report.error
    plain = [c for c in calls if c[2] == "serving_default"]
    assert sum(c[3] for c in plain) > len(orders)  # the batch holding it was tried again


async def test_promotion_switches_the_model_without_restart(stack: Stack, fakes: Fakes) -> None:
    first = make_order(stack.promo, IMAGES[1])
    fakes.balancer.add([first])
    async with running_predictor(stack, fakes) as predictor:
        await eventually(lambda: first.order_id in fakes.balancer.done)
        await stack.heads.activate(stack.promo, f"{stack.alpha}:2")
        await eventually(lambda: predictor.catalog.lookup(stack.promo).version == 2)  # type: ignore[union-attr]
        second = make_order(stack.promo, IMAGES[1])
        fakes.balancer.add([second])
        await eventually(lambda: second.order_id in fakes.balancer.done)
    assert fakes.keeper.reports[first.order_id].model_version == 1
    report = fakes.keeper.reports[second.order_id]
    assert report.model_version == 2
    assert report.model_id == stack.heads.models[f"{stack.alpha}:2"]


async def test_credits_are_never_exceeded(stack: Stack, fakes: Fakes) -> None:
    orders = [make_order(stack.pa if i % 2 else stack.pn, IMAGES[i % 6]) for i in range(25)]
    fakes.balancer.add(orders)
    # Through the DNS resolver with round robin, as with a headless Service in a cluster.
    address = f"dns:///127.0.0.1:{stack.server.port}"
    async with running_predictor(
        stack, fakes, credits=3, max_batch=2, model_server_address=address
    ) as predictor:
        await eventually(lambda: len(fakes.balancer.done) >= 25)
    assert sorted(fakes.balancer.done) == sorted(o.order_id for o in orders)
    assert 1 <= fakes.balancer.max_outstanding <= 3
    statuses = {fakes.keeper.reports[o.order_id].status for o in orders if o.plot_type == stack.pa}
    assert statuses == {report_pb2.REPORT_STATUS_OK}
    assert predictor.calls  # type: ignore[attr-defined]


async def test_with_the_real_balancer_and_keeper(stack: Stack, tmp_path: Path) -> None:
    balancer_service = pytest.importorskip("hydra_balancer.service")
    balancer_settings = pytest.importorskip("hydra_balancer.settings")
    keeper_service = pytest.importorskip("hydra_keeper.service")
    keeper_settings = pytest.importorskip("hydra_keeper.settings")
    balancer = balancer_service.BalancerService(
        balancer_settings.BalancerSettings(balancer_host="127.0.0.1", balancer_port=0),
        CollectorRegistry(),
    )
    keeper = keeper_service.KeeperService(
        keeper_settings.KeeperSettings(
            database_url=stack.heads.url,
            storage_dir=tmp_path / "storage",
            keeper_host="127.0.0.1",
            keeper_port=0,
            grace_seconds=5,
        ),
        CollectorRegistry(),
    )
    await balancer.start()
    await keeper.start()
    orders = [make_order(stack.pb if i % 3 else stack.pn, IMAGES[i % 6]) for i in range(12)]
    ids = {o.order_id for o in orders}
    done: set[str] = set()
    try:
        async with running_predictor(
            stack,
            None,
            balancer_address=f"127.0.0.1:{balancer.port}",
            keeper_address=f"127.0.0.1:{keeper.port}",
            credits=4,
        ):
            # A feeder's Submit stream: the balancer reports done once the keeper committed.
            async with grpc.aio.insecure_channel(f"127.0.0.1:{balancer.port}") as ch:
                call = balancer_pb2_grpc.BalancerServiceStub(ch).Submit()
                await call.write(balancer_pb2.SubmitRequest(orders=orders, feeder_id="test"))
                async with asyncio.timeout(120):
                    while not ids <= done:
                        response = await call.read()
                        assert response is not grpc.aio.EOF
                        done.update(response.done)
                await call.done_writing()
    finally:
        await keeper.stop()
        await balancer.stop()
    engine = make_engine(stack.heads.url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(RunHistory.order_id, RunHistory.status, RunHistory.model_id).where(
                        RunHistory.order_id.in_(ids)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    by_id = {row[0]: row for row in rows}
    assert set(by_id) == ids
    for order in orders:
        _, status, model_id = by_id[order.order_id]
        if order.plot_type == stack.pn:
            assert status == InferenceStatus.NO_MODEL and model_id is None
        else:
            assert status == InferenceStatus.OK
            assert model_id == stack.heads.models[f"{stack.beta}:1"]


async def test_model_server_restart_costs_time_not_verdicts(stack: Stack, fakes: Fakes) -> None:
    """Orders that arrive while the model server is down wait for it, then get verdicts."""
    port = free_port()
    orders = [make_order(stack.pa, IMAGES[i]) for i in range(3)]
    fakes.balancer.add(orders)
    async with running_predictor(
        stack, fakes, model_server_address=f"127.0.0.1:{port}", model_server_retry_seconds=120
    ):
        await asyncio.sleep(2.0)  # the model server is not there yet
        assert not fakes.keeper.reports
        late = ModelServerService(
            ModelServerSettings(
                model_dir=stack.server.settings.model_dir,
                model_server_host="127.0.0.1",
                model_server_port=port,
                model_poll_seconds=60,
                grace_seconds=1,
            ),
            CollectorRegistry(),
        )
        await late.start()
        try:
            await eventually(lambda: len(fakes.balancer.done) >= 3)
        finally:
            await late.stop()
    for order in orders:
        assert fakes.keeper.reports[order.order_id].status == report_pb2.REPORT_STATUS_OK


def _predicts(server: ModelServerService) -> float:
    """Predict calls a model server answered."""
    return sum(
        sample.value
        for family in server.metrics.requests.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def test_two_model_servers_one_stopped_costs_no_verdict(stack: Stack, fakes: Fakes) -> None:
    """``hydra up`` with HYDRA_MODEL_SERVER_REPLICAS=2 hands the predictor both addresses
    (``ipv4:a,b``): calls go round robin, and with one copy gone they go to the other at once.
    No retry time is allowed here, so a call that stayed with the stopped copy would end in an
    Error report."""
    second = ModelServerService(
        ModelServerSettings(
            model_dir=stack.server.settings.model_dir,
            model_server_host="127.0.0.1",
            model_server_port=0,
            model_poll_seconds=60,
            grace_seconds=0,
        ),
        CollectorRegistry(),
    )
    await second.start()
    address = f"ipv4:127.0.0.1:{stack.server.port},127.0.0.1:{second.port}"
    first_before = _predicts(stack.server)
    before: list[order_pb2.InferenceOrder] = []
    after = [make_order(stack.pa, IMAGES[i % len(IMAGES)]) for i in range(8)]
    try:
        async with running_predictor(
            stack, fakes, model_server_address=address, model_server_retry_seconds=0, max_batch=1
        ):
            # Round robin picks among the copies whose connection is up: orders, two at a
            # time, until both copies have answered (the second connects a moment later).
            for _ in range(100):
                wave = [make_order(stack.pa, IMAGES[i % len(IMAGES)]) for i in range(2)]
                before += wave
                fakes.balancer.add(wave)

                def answered(sent: int = len(before)) -> bool:
                    return len(fakes.balancer.done) >= sent

                await eventually(answered)
                if _predicts(second) > 0 and _predicts(stack.server) > first_before:
                    break
            served = [_predicts(stack.server) - first_before, _predicts(second)]
            await second.stop()
            fakes.balancer.add(after)
            await eventually(lambda: len(fakes.balancer.done) >= len(before) + len(after))
    finally:
        await second.stop()
    assert all(n > 0 for n in served), f"round robin used one copy only: {served}"
    for order in (*before, *after):
        assert fakes.keeper.reports[order.order_id].status == report_pb2.REPORT_STATUS_OK


async def test_a_cbam_model_trains_exports_serves_and_explains(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    """InceptionV3 with CBAM end to end, at a small input size so it stays quick: trained by
    the trainer's own ``fit`` on real PNGs, exported with both signatures, loaded by the
    model server, and its Grad-CAM heat map carried in the predictor's report."""
    from hydra_trainer.architectures import get_architecture
    from hydra_trainer.dataset import LabelledImage
    from hydra_trainer.export import export_model
    from hydra_trainer.train import TrainOptions, fit

    items = []
    for i, png in enumerate(IMAGES * 2):
        path = tmp_path / f"img{i}.png"
        path.write_bytes(png)
        items.append(LabelledImage(i, str(path), ["Good", "Bad"][i % 2]))
    arch = get_architecture("inceptionv3-cbam")
    options = TrainOptions(
        architecture=arch.name, epochs=1, batch_size=4, input_height=75, input_width=75
    )
    fitted = await asyncio.to_thread(fit, arch, ["Good", "Bad"], items[:8], items[8:], options)
    assert any(layer.name.endswith("_cbam") for layer in fitted.model.layers)
    name = unique("cbam")
    version_dir = await asyncio.to_thread(
        export_model,
        fitted.model,
        stack.heads.model_dir,
        name,
        1,
        ["Good", "Bad"],
        architecture=arch,
    )
    # Name the model's top output for the probe image "Bad", so the predictor asks for a map.
    served = tf.saved_model.load(str(version_dir))
    assert set(served.signatures) == {"serving_default", "explain"}
    top = int(
        np.argmax(served.signatures["serving_default"](image=tf.constant([IMAGES[0]]))["weights"])
    )
    labels = ["Good", "Good"]
    labels[top], labels[1 - top] = "Bad", "Good"
    plot_type = unique("pcbam")
    engine = make_engine(stack.heads.url)
    try:
        async with engine.begin() as conn:
            pt_id = inserted_id(await conn.execute(sa.insert(PlotType).values(name=plot_type)))
            model_id = inserted_id(
                await conn.execute(
                    sa.insert(Model).values(
                        plot_type_id=pt_id,
                        name=name,
                        version=1,
                        architecture=arch.name,
                        label_order=labels,
                    )
                )
            )
            await conn.execute(
                sa.update(PlotType).where(PlotType.id == pt_id).values(active_model_id=model_id)
            )
    finally:
        await engine.dispose()
    await stack.server.rescan()

    orders = [make_order(plot_type, IMAGES[0]), make_order(plot_type, IMAGES[0])]
    fakes.balancer.add(orders)
    async with running_predictor(stack, fakes):
        await eventually(lambda: all(o.order_id in fakes.balancer.done for o in orders), within=120)
    for order in orders:
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_OK, report.error
        assert report.model_id == model_id and list(report.labels) == labels
        assert report.labels[int(np.argmax(report.weights))] == "Bad"
        heat = report.heat_map
        assert (heat.height, heat.width) == (75, 75) and len(heat.values) == 75 * 75
        assert all(0.0 <= v <= 1.0 for v in heat.values)


@contextlib.asynccontextmanager
async def config_server(
    stack: Stack, config: Path, versions: tuple[int, ...]
) -> AsyncIterator[tuple[ModelServerService, CollectorRegistry]]:
    """A model server that follows a model config file listing ``versions`` of alpha."""
    from hydra_common.modelconfig import ModelEntry, render, write_if_changed

    write_if_changed(
        config,
        render([ModelEntry(stack.alpha, str(stack.heads.model_dir / stack.alpha), versions)]),
    )
    registry = CollectorRegistry()
    server = ModelServerService(
        ModelServerSettings(
            model_dir=stack.heads.model_dir,
            model_config_file=config,
            model_server_host="127.0.0.1",
            model_server_port=0,
            model_poll_seconds=0.1,
            grace_seconds=1,
        ),
        registry,
    )
    await server.start()
    try:
        yield server, registry
    finally:
        await server.stop()


async def _plot_type_on(stack: Stack, model_key: str) -> str:
    """A new plot type whose active model is ``model_key``."""
    name = unique("loading")
    heads = await register_heads(stack.heads.url, stack.heads.model_dir, [name], {})
    heads.models = stack.heads.models
    await heads.activate(name, model_key)
    return name


def _not_found(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value(
        "hydra_modelserver_requests_total",
        {"signature": "serving_default", "outcome": "not_found"},
    )
    return value or 0.0


async def test_a_version_still_loading_costs_time_not_verdicts(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    """The database names version 2 before the model server holds it (a promotion racing the
    model config file): the predictor asks for version 2, gets NOT_FOUND, and waits; once the
    file lists it, the same orders get version 2's verdicts, none an error."""
    config = tmp_path / "models.config"
    plot_type = await _plot_type_on(stack, f"{stack.alpha}:2")
    orders = [make_order(plot_type, IMAGES[i]) for i in range(3)]
    fakes.balancer.add(orders)
    async with config_server(stack, config, (1,)) as (server, registry):
        async with running_predictor(
            stack,
            fakes,
            model_server_address=f"127.0.0.1:{server.port}",
            model_server_retry_seconds=120,
        ) as predictor:
            await eventually(lambda: _not_found(registry) >= 2)  # asked, refused, asked again
            assert not fakes.keeper.reports
            assert fakes.balancer.done == []
            write_if_changed(
                config,
                render([ModelEntry(stack.alpha, str(stack.heads.model_dir / stack.alpha), (1, 2))]),
            )
            await eventually(lambda: len(fakes.balancer.done) >= 3)
            errors = predictor.metrics.reports.labels("error")._value.get()
    assert sorted(fakes.balancer.done) == sorted(o.order_id for o in orders)
    for order in orders:
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_OK, report.error
        assert report.model_version == 2
    assert errors == 0


async def test_a_version_that_never_loads_ends_in_error_reports(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    """The wait is bounded: past HYDRA_MODEL_SERVER_RETRY_SECONDS the orders get ERROR
    reports naming NOT_FOUND, and are done (not held forever)."""
    plot_type = await _plot_type_on(stack, f"{stack.alpha}:2")
    orders = [make_order(plot_type, IMAGES[i]) for i in range(2)]
    fakes.balancer.add(orders)
    async with config_server(stack, tmp_path / "models.config", (1,)) as (server, registry):
        async with running_predictor(
            stack,
            fakes,
            model_server_address=f"127.0.0.1:{server.port}",
            model_server_retry_seconds=1.0,
        ):
            await eventually(lambda: len(fakes.balancer.done) >= 2)
    assert _not_found(registry) >= 2  # retried before giving up
    for order in orders:
        report = fakes.keeper.reports[order.order_id]
        assert report.status == report_pb2.REPORT_STATUS_ERROR
        assert "NOT_FOUND" in report.error and report.model_version == 2
