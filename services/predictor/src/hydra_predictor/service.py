"""The predictor: orders from the balancer, predictions from the model server, reports to
the keeper.

A replica holds at most ``HYDRA_CREDITS`` orders. It grants the balancer credits for its
free slots on the ``Work`` stream, and frees a slot (re-granting one credit and reporting the
order done) only when the keeper has acknowledged the order's report, so an order is never
done before its report is durable. When the Work stream breaks, the balancer requeues what
it had sent; orders already being predicted still finish and reach the keeper (idempotent),
and the new stream is granted only the slots that are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import grpc
from hydra.v1 import balancer_pb2, balancer_pb2_grpc, report_pb2
from hydra.v1.order_pb2 import InferenceOrder
from prometheus_client import REGISTRY, CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.grpcserver import Backoff, channel, describe_rpc_error
from hydra_common.logs import get_logger
from hydra_common.runner import run_service
from hydra_predictor.catalog import ActiveModel, ModelCatalog
from hydra_predictor.inference import Batcher, BatchRunner, ModelClient
from hydra_predictor.keeper_link import KeeperLink
from hydra_predictor.metrics import PredictorMetrics
from hydra_predictor.settings import PredictorSettings

log = get_logger(__name__)


@dataclass
class _Held:
    """An order this replica is working on, and the Work streams that sent it."""

    streams: list[int]  # one entry per copy the balancer sent (a requeued order may come twice)


class PredictorService:
    """One predictor replica."""

    def __init__(
        self, settings: PredictorSettings, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.metrics = PredictorMetrics(registry if registry is not None else REGISTRY)
        self.engine = make_engine(settings.db_url)
        self.catalog = ModelCatalog(self.engine, self.metrics)
        self.client = ModelClient(
            settings.model_server_address,
            settings.predict_timeout_seconds,
            self.metrics,
            settings.model_server_retry_seconds,
        )
        self.runner = BatchRunner(self.client, settings, self.metrics)
        self.batcher = Batcher(settings.max_batch, settings.max_wait_ms, self._run_batch)
        self.keeper = KeeperLink(
            settings.keeper_address, self.metrics, self._acknowledged, settings.report_batch_bytes
        )
        self.held: dict[str, _Held] = {}
        self.slots_used = 0
        self.connected = asyncio.Event()  # a Work stream is open
        self._stream = 0  # number of the current Work stream
        self._grant = 0  # credits to send on the current stream
        self._done: list[str] = []  # done notices to send on the current stream
        self._work_wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()  # one write at a time on the Work stream
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start reading the model catalog, and the keeper and balancer streams."""
        self._tasks = [
            asyncio.create_task(
                self.catalog.run(self.settings.model_refresh_seconds), name="catalog"
            ),
            asyncio.create_task(self.keeper.run(), name="keeper-link"),
            asyncio.create_task(self._work_loop(), name="balancer-link"),
        ]
        log.info(
            "predictor started",
            extra={
                "predictor_id": self.settings.predictor_id,
                "balancer": self.settings.balancer_address,
                "keeper": self.settings.keeper_address,
                "model_server": self.settings.model_server_address,
                "credits": self.settings.credits,
            },
        )

    async def stop(self) -> None:
        """Take no new orders, finish those held (within the grace period), then close."""
        self._stopping = True
        try:
            await asyncio.wait_for(self._idle.wait(), self.settings.grace_seconds)
        except TimeoutError:
            log.warning(
                "stopping with orders unfinished; the balancer requeues them",
                extra={"held": len(self.held)},
            )
        await self._say_goodbye()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.batcher.abandon()  # past the grace period: the balancer requeues these
        await self.client.close()
        await self.engine.dispose()
        log.info("predictor stopped")

    async def _say_goodbye(self) -> None:
        """Send the last done notices and half-close, so the balancer knows we left."""
        call = self._call
        if call is None:
            return
        with contextlib.suppress(grpc.RpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            async with self._write_lock:
                if self._done:
                    done, self._done = self._done, []
                    await call.write(balancer_pb2.WorkRequest(done=done))
                await call.done_writing()
                self._call = None  # the writer must not write after the half-close

    # --- the balancer's Work stream -----------------------------------------------------

    async def _work_loop(self) -> None:
        # Without the catalog every order would be reported NO_MODEL: take none until then.
        await self.catalog.ready.wait()
        backoff = Backoff()
        while not self._stopping:
            opened = time.monotonic()
            try:
                await self._work_stream(backoff)
            except Exception as exc:  # any failure of the stream: reconnect, never give up
                log.warning(
                    "balancer stream broken",
                    extra={
                        "balancer": self.settings.balancer_address,
                        "error": describe_rpc_error(exc),
                        "held": len(self.held),
                    },
                )
            finally:
                self.connected.clear()
                self._call = None
            if self._stopping:
                return
            if time.monotonic() - opened > backoff.cap:
                backoff.reset()
            await backoff.wait()

    async def _work_stream(self, backoff: Backoff) -> None:
        async with channel(self.settings.balancer_address) as ch:
            call = balancer_pb2_grpc.BalancerServiceStub(ch).Work()
            self._stream += 1
            stream = self._stream
            # Done notices of the broken stream are moot (the balancer requeued those
            # orders); credits are granted afresh for the slots that are free now.
            self._done = []
            self._grant = 0
            free = max(0, self.settings.credits - self.slots_used)
            await call.write(
                balancer_pb2.WorkRequest(
                    predictor_id=self.settings.predictor_id,
                    credits=0 if self._stopping else free,
                )
            )
            self._call = call
            self.connected.set()
            writer = asyncio.create_task(self._write_work(call, stream))
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        log.info("balancer ended the work stream")
                        return
                    backoff.reset()
                    self._accept(response.orders, stream)
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
                call.cancel()

    async def _write_work(self, call: grpc.aio.StreamStreamCall, stream: int) -> None:
        write = call.write
        while stream == self._stream:
            await self._work_wake.wait()
            self._work_wake.clear()
            async with self._write_lock:
                if stream != self._stream or self._call is not call:
                    return
                if self._grant or self._done:
                    credits, done = self._grant, self._done
                    self._grant, self._done = 0, []
                    await write(balancer_pb2.WorkRequest(credits=credits, done=done))

    def _accept(self, orders: list[InferenceOrder], stream: int) -> None:
        for order in orders:
            self.slots_used += 1
            self._idle.clear()
            held = self.held.get(order.order_id)
            if held is not None:
                # Requeued by the balancer while we still work on it: answer it once.
                held.streams.append(stream)
                continue
            self.held[order.order_id] = _Held([stream])
            model = self.catalog.lookup(order.plot_type)
            if model is None:
                self._no_model(order)
            else:
                self.batcher.add(model, order)

    def _no_model(self, order: InferenceOrder) -> None:
        self.metrics.reports.labels("no_model").inc()
        self.keeper.submit(
            [
                report_pb2.Report(
                    order=order,
                    status=report_pb2.REPORT_STATUS_NO_MODEL,
                    predictor_id=self.settings.predictor_id,
                )
            ]
        )

    async def _run_batch(self, model: ActiveModel, orders: list[InferenceOrder]) -> None:
        try:
            shadow = self.catalog.shadow_for(orders[0].plot_type)
            reports = await self.runner.run(model, orders, shadow)
        except Exception as exc:  # a bug must not lose orders: report them as errors
            log.exception("batch failed", extra={"order_id": orders[0].order_id})
            self.metrics.reports.labels("error").inc(len(orders))
            reports = [
                report_pb2.Report(
                    order=o,
                    status=report_pb2.REPORT_STATUS_ERROR,
                    model_id=model.model_id,
                    model_name=model.name,
                    model_version=model.version,
                    error=f"predictor error: {exc!r}"[:1000],
                    predictor_id=self.settings.predictor_id,
                )
                for o in orders
            ]
        self.keeper.submit(reports)

    def _acknowledged(self, order_id: str) -> None:
        """The keeper committed the order's report: free its slots and tell the balancer."""
        held = self.held.pop(order_id, None)
        if held is None:
            return
        self.slots_used -= len(held.streams)
        if not self._stopping:
            self._grant += len(held.streams)
        if self._stream in held.streams:
            self._done.append(order_id)
        if not self.held:
            self._idle.set()
        self._work_wake.set()


async def main(settings: PredictorSettings | None = None) -> None:
    """Run a predictor replica until SIGTERM or SIGINT."""
    resolved = settings or PredictorSettings()
    await run_service("predictor", resolved, lambda: PredictorService(resolved))
