"""The balancer against real gRPC clients on loopback: fake feeders and predictors.

The fake feeder and predictor below are written here, on the real generated stubs, so these
tests exercise the balancer's contract without the other services.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hydra.v1 import balancer_pb2, balancer_pb2_grpc, order_pb2
from prometheus_client import CollectorRegistry

from hydra_balancer.service import RESPONSE_BYTES, BalancerService
from hydra_balancer.settings import BalancerSettings
from hydra_balancer.wire import id_of
from hydra_testsupport import eventually_async as eventually


def order(i: int, image: bytes = b"") -> order_pb2.InferenceOrder:
    """An order whose id sorts by i."""
    return order_pb2.InferenceOrder(
        order_id=f"order-{i:06d}", plot_type="RF_adc", image=image, chunk=-1
    )


class FakeFeeder:
    """A feeder's Submit stream: send batches, collect accepted and done ids."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.outbox: asyncio.Queue[balancer_pb2.SubmitRequest | None] = asyncio.Queue()
        self.accepted: list[str] = []
        self.done: list[str] = []
        self.sent_messages = 0
        stub = balancer_pb2_grpc.BalancerServiceStub(self.channel)
        self.call = stub.Submit(self._requests())
        self.reader = asyncio.create_task(self._read())

    async def _requests(self) -> AsyncIterator[balancer_pb2.SubmitRequest]:
        while True:
            request = await self.outbox.get()
            if request is None:
                return
            yield request
            self.sent_messages += 1

    async def _read(self) -> None:
        async for response in self.call:
            self.accepted.extend(response.accepted)
            self.done.extend(response.done)

    def send(self, orders: list[order_pb2.InferenceOrder]) -> None:
        self.outbox.put_nowait(balancer_pb2.SubmitRequest(orders=orders, feeder_id="test"))

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
            await self.reader
        await self.channel.close()


class FakePredictor:
    """A predictor's Work stream: grant credits, collect orders, report done."""

    def __init__(self, port: int, name: str = "pred") -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.outbox: asyncio.Queue[balancer_pb2.WorkRequest | None] = asyncio.Queue()
        self.received: list[order_pb2.InferenceOrder] = []
        self.messages = 0
        stub = balancer_pb2_grpc.BalancerServiceStub(self.channel)
        self.outbox.put_nowait(balancer_pb2.WorkRequest(predictor_id=name))
        self.call = stub.Work(self._requests())
        self.reader = asyncio.create_task(self._read())

    async def _requests(self) -> AsyncIterator[balancer_pb2.WorkRequest]:
        while True:
            request = await self.outbox.get()
            if request is None:
                return
            yield request

    async def _read(self) -> None:
        async for response in self.call:
            self.messages += 1
            self.received.extend(response.orders)

    @property
    def ids(self) -> list[str]:
        return [o.order_id for o in self.received]

    def grant(self, credits: int) -> None:
        self.outbox.put_nowait(balancer_pb2.WorkRequest(credits=credits))

    def report_done(self, ids: list[str], credits: int = 0) -> None:
        self.outbox.put_nowait(balancer_pb2.WorkRequest(done=ids, credits=credits))

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
            await self.reader
        await self.channel.close()


@pytest.fixture
async def balancer() -> AsyncIterator[BalancerService]:
    svc = await _start(queue_size=1000)
    yield svc
    await svc.stop()


async def _start(queue_size: int) -> BalancerService:
    settings = BalancerSettings(
        balancer_host="127.0.0.1", balancer_port=0, queue_size=queue_size, grace_seconds=0.5
    )
    svc = BalancerService(settings, CollectorRegistry())
    await svc.start()
    return svc


def metric(svc: BalancerService, name: str) -> float:
    value = svc.registry.get_sample_value(name)
    assert value is not None, name
    return float(value)


async def test_credits_are_respected_and_order_is_fifo(balancer: BalancerService) -> None:
    feeder = FakeFeeder(balancer.port)
    pred = FakePredictor(balancer.port)
    try:
        feeder.send([order(i) for i in range(20)])
        feeder.send([order(i) for i in range(20, 30)])
        await eventually(lambda: len(feeder.accepted) == 30)
        assert metric(balancer, "hydra_balancer_queue_depth") == 30
        pred.grant(7)
        await eventually(lambda: len(pred.received) == 7)
        await asyncio.sleep(0.3)  # give a wrong balancer the chance to over-send
        assert len(pred.received) == 7
        assert pred.ids == [f"order-{i:06d}" for i in range(7)]
        pred.grant(23)
        await eventually(lambda: len(pred.received) == 30)
        assert pred.ids == [f"order-{i:06d}" for i in range(30)]
        assert all(o.stages.queued_ns > 0 for o in pred.received)
        assert all(o.stages.dispatched_ns >= o.stages.queued_ns for o in pred.received)
        # Orders travel in batches: the second grant arrives as few messages, not 23.
        assert pred.messages <= 4
        assert metric(balancer, "hydra_balancer_inflight_orders") == 30
        assert metric(balancer, "hydra_balancer_orders_dispatched_total") == 30
    finally:
        await feeder.close()
        await pred.close()


class FloodingFeeder(FakeFeeder):
    """A feeder that makes a new 256 KiB order whenever gRPC asks for the next message.

    How much a blocked HTTP/2 stream still buffers depends on the flow-control windows, which
    gRPC grows with its bandwidth-delay estimate (5-15 MiB on loopback, more on a busy
    machine). Flooding until the stream stops asking is independent of that figure.
    """

    IMAGE = bytes(256 * 1024)

    def __init__(self, port: int, limit: int) -> None:
        self.limit = limit
        self.generated = 0
        self.flooding = True
        super().__init__(port)

    async def _requests(self) -> AsyncIterator[balancer_pb2.SubmitRequest]:
        while self.flooding and self.generated < self.limit:
            i = self.generated
            self.generated += 1
            yield balancer_pb2.SubmitRequest(orders=[order(i, self.IMAGE)], feeder_id="test")
            self.sent_messages += 1
        async for request in super()._requests():
            yield request


async def test_full_queue_pushes_back_on_the_feeder_and_drops_nothing() -> None:
    svc = await _start(queue_size=3)
    limit = 2048  # 512 MiB: far beyond any flow-control window gRPC would open
    feeder = FloodingFeeder(svc.port, limit)
    pred: FakePredictor | None = None
    try:
        await eventually(lambda: len(feeder.accepted) == 3)
        # Wait until the feeder's stream stops taking messages: the transport pushes back.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        last, stable_since = -1, loop.time()
        while loop.time() - stable_since < 1.0:
            assert loop.time() < deadline, "the feeder's stream never blocked"
            if feeder.sent_messages != last:
                last, stable_since = feeder.sent_messages, loop.time()
            await asyncio.sleep(0.05)
        feeder.flooding = False
        # The feeder's stream is blocked well before the flood's end, nothing past the queue
        # was accepted, and the balancer holds exactly its capacity.
        assert feeder.sent_messages < limit
        assert len(feeder.accepted) == 3
        assert svc.queued == 3
        total = feeder.generated
        pred = FakePredictor(svc.port)
        pred.grant(limit)
        await eventually(lambda: len(pred.received) == total)
        assert pred.ids == [f"order-{i:06d}" for i in range(total)]
        await eventually(lambda: len(feeder.accepted) == total)
        assert feeder.accepted == [f"order-{i:06d}" for i in range(total)]
        assert svc.queued <= 3
    finally:
        await feeder.close()
        if pred is not None:
            await pred.close()
        await svc.stop()


async def test_broken_predictor_orders_go_to_the_front_and_to_another_predictor(
    balancer: BalancerService,
) -> None:
    feeder = FakeFeeder(balancer.port)
    first = FakePredictor(balancer.port, "first")
    second: FakePredictor | None = None
    try:
        feeder.send([order(i) for i in range(10)])
        await eventually(lambda: len(feeder.accepted) == 10)
        first.grant(4)
        await eventually(lambda: len(first.received) == 4)
        first.report_done(["order-000000"])
        await eventually(lambda: feeder.done == ["order-000000"])
        await first.close()  # breaks with orders 1..3 unfinished
        await eventually(lambda: metric(balancer, "hydra_balancer_predictors_connected") == 0)
        assert metric(balancer, "hydra_balancer_orders_requeued_total") == 3
        assert [id_of(key) for key in balancer.queued_keys()[:3]] == [
            "order-000001",
            "order-000002",
            "order-000003",
        ]
        second = FakePredictor(balancer.port, "second")
        second.grant(100)
        await eventually(lambda: len(second.received) == 9)
        assert second.ids == [f"order-{i:06d}" for i in range(1, 10)]
        second.report_done(second.ids)
        await eventually(lambda: len(feeder.done) == 10)
        assert sorted(feeder.done) == [f"order-{i:06d}" for i in range(10)]
        assert metric(balancer, "hydra_balancer_inflight_orders") == 0
    finally:
        await feeder.close()
        if second is not None:
            await second.close()


async def test_done_goes_back_to_the_feeder_that_submitted(balancer: BalancerService) -> None:
    one, two = FakeFeeder(balancer.port), FakeFeeder(balancer.port)
    pred = FakePredictor(balancer.port)
    try:
        one.send([order(i) for i in range(5)])
        two.send([order(i) for i in range(100, 105)])
        await eventually(lambda: len(one.accepted) == 5 and len(two.accepted) == 5)
        pred.grant(10)
        await eventually(lambda: len(pred.received) == 10)
        pred.report_done(list(reversed(pred.ids)))
        await eventually(lambda: len(one.done) == 5 and len(two.done) == 5)
        assert sorted(one.done) == [f"order-{i:06d}" for i in range(5)]
        assert sorted(two.done) == [f"order-{i:06d}" for i in range(100, 105)]
        assert metric(balancer, "hydra_balancer_orders_done_total") == 10
    finally:
        await one.close()
        await two.close()
        await pred.close()


async def test_duplicates_are_not_queued_twice(balancer: BalancerService) -> None:
    feeder = FakeFeeder(balancer.port)
    pred = FakePredictor(balancer.port)
    try:
        feeder.send([order(1), order(2)])
        feeder.send([order(1)])  # re-sent while queued
        await eventually(lambda: len(feeder.accepted) == 3)
        assert balancer.queued == 2
        pred.grant(1)
        await eventually(lambda: len(pred.received) == 1)
        feeder.send([order(1), order(2)])  # re-sent while in flight / queued
        await eventually(lambda: len(feeder.accepted) == 5)
        pred.grant(10)
        await eventually(lambda: len(pred.received) == 2)
        await asyncio.sleep(0.3)
        assert pred.ids == ["order-000001", "order-000002"]
        assert metric(balancer, "hydra_balancer_orders_received_total") == 2
    finally:
        await feeder.close()
        await pred.close()


async def test_resent_order_is_taken_over_by_the_new_feeder_stream(
    balancer: BalancerService,
) -> None:
    old = FakeFeeder(balancer.port)
    new: FakeFeeder | None = None
    pred = FakePredictor(balancer.port)
    try:
        old.send([order(1), order(2)])
        await eventually(lambda: len(old.accepted) == 2)
        await old.close()  # the feeder restarts...
        await eventually(lambda: metric(balancer, "hydra_balancer_feeders_connected") == 0)
        new = FakeFeeder(balancer.port)
        new.send([order(1), order(2)])  # ...and re-sends what is not done
        await eventually(lambda: len(new.accepted) == 2)
        pred.grant(10)
        await eventually(lambda: len(pred.received) == 2)
        pred.report_done(pred.ids)
        await eventually(lambda: len(new.done) == 2)
        assert sorted(new.done) == ["order-000001", "order-000002"]
        assert old.done == []
    finally:
        if new is not None:
            await new.close()
        await pred.close()


async def test_a_big_grant_of_images_arrives_in_several_messages_in_order(
    balancer: BalancerService,
) -> None:
    feeder = FakeFeeder(balancer.port)
    pred = FakePredictor(balancer.port)
    try:
        image = bytes(256 * 1024)
        # 10 MiB: more than one message, each within gRPC's default 4 MiB receive limit
        # (the fake predictor's channel has the defaults).
        feeder.send([order(i, image) for i in range(40)])
        await eventually(lambda: len(feeder.accepted) == 40)
        pred.grant(100)
        await eventually(lambda: len(pred.received) == 40)
        assert pred.ids == [f"order-{i:06d}" for i in range(40)]
        assert all(o.image == image for o in pred.received)
        assert 40 * len(image) / RESPONSE_BYTES <= pred.messages <= 40
        assert RESPONSE_BYTES < 4 * 1024 * 1024
    finally:
        await feeder.close()
        await pred.close()


async def test_requeued_orders_keep_dispatch_order_and_queued_time(
    balancer: BalancerService,
) -> None:
    feeder = FakeFeeder(balancer.port)
    first = FakePredictor(balancer.port, "first")
    second: FakePredictor | None = None
    try:
        feeder.send([order(i) for i in range(3)])
        feeder.send([order(i) for i in range(3, 6)])
        await eventually(lambda: len(feeder.accepted) == 6)
        first.grant(2)  # two dispatches, each across the two queued batches' border or not
        await eventually(lambda: len(first.received) == 2)
        first.grant(3)
        await eventually(lambda: len(first.received) == 5)
        queued = {o.order_id: o.stages.queued_ns for o in first.received}
        first.report_done(["order-000001", "order-000003"])
        await eventually(lambda: len(feeder.done) == 2)
        await first.close()
        await eventually(lambda: metric(balancer, "hydra_balancer_orders_requeued_total") == 3)
        assert metric(balancer, "hydra_balancer_inflight_orders") == 0
        second = FakePredictor(balancer.port, "second")
        second.grant(10)
        await eventually(lambda: len(second.received) == 4)
        assert second.ids == ["order-000000", "order-000002", "order-000004", "order-000005"]
        for o in second.received[:3]:
            assert o.stages.queued_ns == queued[o.order_id]
    finally:
        await feeder.close()
        await first.close()
        if second is not None:
            await second.close()


async def test_repeated_and_missing_ids_within_one_message(balancer: BalancerService) -> None:
    feeder = FakeFeeder(balancer.port)
    pred = FakePredictor(balancer.port)
    try:
        anonymous = order_pb2.InferenceOrder(plot_type="RF_adc")
        feeder.send([order(1), order(2), order(1), anonymous, order(3)])
        await eventually(lambda: len(feeder.accepted) == 4)
        assert balancer.queued == 3
        assert metric(balancer, "hydra_balancer_orders_received_total") == 3
        pred.grant(10)
        await eventually(lambda: len(pred.received) == 3)
        assert pred.ids == ["order-000001", "order-000002", "order-000003"]
        pred.report_done([*pred.ids, "order-000001", "never-seen"])
        await eventually(lambda: len(feeder.done) == 3)
        await asyncio.sleep(0.2)
        assert sorted(feeder.done) == ["order-000001", "order-000002", "order-000003"]
        assert metric(balancer, "hydra_balancer_orders_done_total") == 3
    finally:
        await feeder.close()
        await pred.close()


async def test_health_and_graceful_stop() -> None:
    svc = await _start(queue_size=10)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{svc.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="hydra.v1.BalancerService")
        reply = await health.Check(request)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert metric(svc, "hydra_balancer_queue_capacity") == 10
    finally:
        await svc.stop()
        await channel.close()
    with pytest.raises(grpc.aio.AioRpcError):
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{svc.port}")
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        finally:
            await channel.close()
