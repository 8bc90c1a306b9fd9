"""The predictor's stream to the keeper: reports out in batches, acknowledged ids back.

Every report stays held until the keeper acknowledges its order id; on a new stream
(keeper restarted, network broke) every held report is sent again. The keeper is idempotent
by order id, so a report sent twice is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, report_pb2

from hydra_common.grpcserver import Backoff, channel, describe_rpc_error
from hydra_common.logs import get_logger
from hydra_predictor.metrics import PredictorMetrics

log = get_logger(__name__)

# A batch also stops at this many reports, so one acknowledgement never waits on thousands.
MAX_REPORTS_PER_MESSAGE = 512


@dataclass
class _Held:
    report: report_pb2.Report
    first_sent: float = 0.0  # perf_counter of the first send; 0 = not sent yet


class KeeperLink:
    """Holds reports until the keeper acknowledges them; reconnects and re-sends."""

    def __init__(
        self,
        address: str,
        metrics: PredictorMetrics,
        on_acked: Callable[[str], None],
        batch_bytes: int,
    ) -> None:
        self.address = address
        self.metrics = metrics
        self.on_acked = on_acked
        self.batch_bytes = batch_bytes
        self.held: dict[str, _Held] = {}
        self._unsent: deque[str] = deque()
        self._wake = asyncio.Event()
        self.connected = asyncio.Event()

    def submit(self, reports: list[report_pb2.Report]) -> None:
        """Hold reports and send them on the current stream (or the next one)."""
        for report in reports:
            order_id = report.order.order_id
            self.held[order_id] = _Held(report)
            self._unsent.append(order_id)
        self._wake.set()

    async def run(self) -> None:
        """Keep a Record stream open for as long as the predictor runs."""
        backoff = Backoff()
        while True:
            opened = time.monotonic()
            try:
                await self._stream(backoff)
            except Exception as exc:  # any failure of the stream: reconnect, never give up
                log.warning(
                    "keeper stream broken",
                    extra={
                        "keeper": self.address,
                        "error": describe_rpc_error(exc),
                        "held": len(self.held),
                    },
                )
            finally:
                self.connected.clear()
            if time.monotonic() - opened > backoff.cap:
                backoff.reset()  # it was up a good while: this is a fresh failure
            await backoff.wait()

    async def _stream(self, backoff: Backoff) -> None:
        async with channel(self.address) as ch:
            call = keeper_pb2_grpc.KeeperServiceStub(ch).Record()
            # Everything not acknowledged goes again, oldest first.
            self._unsent = deque(self.held)
            self._wake.set()
            writer = asyncio.create_task(self._write(call))
            try:
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        log.warning(
                            "keeper ended the record stream", extra={"keeper": self.address}
                        )
                        return
                    backoff.reset()
                    self._acknowledge(response.order_ids)
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
                call.cancel()

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        self.connected.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent:
                batch = self._take_batch()
                if batch:
                    await call.write(keeper_pb2.RecordRequest(reports=batch))

    def _take_batch(self) -> list[report_pb2.Report]:
        batch: list[report_pb2.Report] = []
        size = 0
        now_ns = time.time_ns()
        now = time.perf_counter()
        while self._unsent and len(batch) < MAX_REPORTS_PER_MESSAGE:
            held = self.held.get(self._unsent[0])
            if held is None:  # acknowledged while it waited to be (re)sent
                self._unsent.popleft()
                continue
            report_size = held.report.ByteSize()
            if batch and size + report_size > self.batch_bytes:
                break
            self._unsent.popleft()
            held.report.order.stages.reported_ns = now_ns
            if not held.first_sent:
                held.first_sent = now
            batch.append(held.report)
            size += report_size
        return batch

    def _acknowledge(self, order_ids: list[str]) -> None:
        now = time.perf_counter()
        for order_id in order_ids:
            held = self.held.pop(order_id, None)
            if held is None:
                continue  # a second acknowledgement of a report sent twice
            if held.first_sent:
                self.metrics.keeper_ack_seconds.observe(now - held.first_sent)
            self.on_acked(order_id)
