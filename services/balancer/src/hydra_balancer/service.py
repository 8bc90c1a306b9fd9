"""The balancer: a bounded FIFO of inference orders, handed to predictors by credits.

Feeders stream orders in (``Submit``); predictors open ``Work`` streams, grant credits and
report done orders. The hot path is batch-shaped, so that what Python does per order is a
few C-level steps (``map``, ``zip``, ``dict.update``, ``bytes.join``) rather than bytecode:

- an incoming ``SubmitRequest`` becomes one queue *chunk* (its orders' keys and bytes, one
  queued stamp), admitted with one ``dict.update`` of the owners map;
- a dispatch slices as many orders off the front chunks as a predictor's credits allow and
  files them in flight as one ``_Sent`` batch shared by all their entries;
- a done report pops its keys from the in-flight and owners maps with ``map``, and every
  reply (``SubmitResponse``, ``WorkResponse``) is written by joining already-encoded bytes.

Orders stay the bytes the feeder sent, from its message to the predictor's, and ids stay
bytes (see ``wire.py``); an order's image is copied once by the balancer, into the
WorkResponse that carries it. Metrics move once per batch.

Every order held (queued or in flight) maps to the feeder stream that submitted it, so its
done notice goes back on that stream. A feeder that reconnects and re-sends an order the
balancer still holds takes the order over instead of queueing it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from collections.abc import AsyncIterator
from itertools import repeat

import grpc
from hydra.v1 import balancer_pb2
from prometheus_client import REGISTRY, CollectorRegistry

from hydra_balancer.memory import keep_big_buffers
from hydra_balancer.metrics import BalancerMetrics
from hydra_balancer.settings import BalancerSettings
from hydra_balancer.wire import (
    Body,
    Piece,
    SubmitBatch,
    WireError,
    WorkReport,
    dispatched_stamp,
    encode_submit_response,
    encode_work_responses,
    parse_submit,
    parse_work_request,
    queued_stamp,
    stamp_ns,
)
from hydra_common.errors import InvalidInput
from hydra_common.grpcserver import RunningServer, start_server
from hydra_common.logs import get_logger
from hydra_common.runner import run_service

log = get_logger(__name__)


SERVICE_NAME = balancer_pb2.DESCRIPTOR.services_by_name["BalancerService"].full_name
# Orders sent to a predictor at once travel in WorkResponses of about this many bytes at
# most (a whole grant of image-carrying orders can be many MiB). Each message costs the
# balancer about as much CPU as copying a few hundred KiB, so messages stay big: with 64 KiB
# images, 256 KiB messages cost twice the CPU per order of 4 MiB ones (16 MiB ones cost the
# same as 4 MiB). Under 4 MiB, a client with gRPC's default receive limit takes them too.
RESPONSE_BYTES = (4 << 20) - (64 << 10)
GC_THRESHOLD = 50_000  # allocations between young-generation collections (Python's: 700)
_ANONYMOUS = b"\x00"  # the key of an empty order id


class _Chunk:
    """Orders queued together: their keys and bodies, from ``start`` on, and queued stamp."""

    __slots__ = ("bodies", "keys", "ns", "stamp", "start")

    def __init__(self, keys: list[bytes], bodies: list[Body], stamp: bytes, ns: int) -> None:
        self.keys = keys
        self.bodies = bodies
        self.stamp = stamp
        self.ns = ns
        self.start = 0


class _Sent:
    """Orders dispatched to a predictor together (shared by their in-flight entries)."""

    __slots__ = ("bodies", "keys", "stamp")

    def __init__(self, keys: list[bytes], bodies: list[Body], stamp: bytes) -> None:
        self.keys = keys
        self.bodies = bodies
        self.stamp = stamp


class _FeederStream:
    """One open Submit stream: what to tell its feeder next (as order keys)."""

    __slots__ = ("accepted", "closed", "done", "ended", "name", "wake")

    def __init__(self, name: str) -> None:
        self.name = name
        self.accepted: list[bytes] = []
        self.done: list[bytes] = []
        self.wake = asyncio.Event()
        self.closed = False  # the stream is gone: drop done notices for it
        self.ended = False  # the feeder half-closed: end once its orders are done


class _PredictorStream:
    """One open Work stream: its credits, the orders it holds and those to send it."""

    __slots__ = ("closed", "credits", "ended", "inflight", "name", "outbox", "wake")

    def __init__(self, name: str) -> None:
        self.name = name
        self.credits = 0
        # key -> the batch it was sent in; insertion order = dispatch order.
        self.inflight: dict[bytes, _Sent] = {}
        self.outbox: list[Piece] = []  # orders to send, with their queued stamps
        self.wake = asyncio.Event()
        self.closed = False
        self.ended = False


def _submit_request(raw: bytes) -> SubmitBatch:
    try:
        return parse_submit(raw)
    except (WireError, UnicodeDecodeError, IndexError) as exc:
        raise InvalidInput(f"malformed SubmitRequest: {exc}") from exc


def _work_request(raw: bytes) -> WorkReport:
    try:
        return parse_work_request(raw)
    except (WireError, IndexError) as exc:
        raise InvalidInput(f"malformed WorkRequest: {exc}") from exc


def _identity(data: bytes) -> bytes:
    return data


class BalancerService:
    """Queues orders from feeders and dispatches them to predictors by credits."""

    def __init__(
        self, settings: BalancerSettings, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.capacity = settings.queue_size
        self.queue: deque[_Chunk] = deque()
        self.queued = 0  # orders in the queue
        # Every order held (queued or in flight) -> the feeder stream that submitted it.
        self.owners: dict[bytes, _FeederStream] = {}
        self.predictors: list[_PredictorStream] = []
        self.feeders: set[_FeederStream] = set()
        self._room = asyncio.Event()
        self._rotate = 0
        self.registry = registry if registry is not None else REGISTRY
        self.metrics = BalancerMetrics(self.registry)
        self.metrics.bind(
            queue_depth=lambda: self.queued,
            capacity=self.capacity,
            inflight=lambda: sum(len(p.inflight) for p in self.predictors),
            predictors=lambda: len(self.predictors),
            feeders=lambda: len(self.feeders),
        )
        self._server: RunningServer | None = None
        self.port = 0

    def queued_keys(self) -> list[bytes]:
        """Keys of the queued orders, front first (for tests and debugging)."""
        return [key for chunk in self.queue for key in chunk.keys[chunk.start :]]

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the gRPC server; ``.port`` is the bound port afterwards."""
        self._server = await start_server(
            [self._register],
            [SERVICE_NAME],
            port=self.settings.balancer_port,
            host=self.settings.balancer_host,
        )
        self.port = self._server.port

    def _register(self, server: grpc.aio.Server) -> None:
        """Serve BalancerService with the byte-level codecs of ``wire.py``."""
        handlers = {
            "Submit": grpc.stream_stream_rpc_method_handler(
                self.Submit,
                request_deserializer=_submit_request,
                response_serializer=_identity,
            ),
            "Work": grpc.stream_stream_rpc_method_handler(
                self.Work,
                request_deserializer=_work_request,
                response_serializer=_identity,
            ),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )

    async def stop(self) -> None:
        """Go NOT_SERVING, then stop; held orders are re-sent by feeders on reconnect."""
        if self._server is not None:
            await self._server.stop(self.settings.grace_seconds)
            self._server = None
            log.info(
                "balancer stopped",
                extra={"queued": self.queued, "held": len(self.owners)},
            )

    # --- the queue -------------------------------------------------------------------------

    def _admit(self, keys: list[bytes], bodies: list[Body], feeder: _FeederStream) -> None:
        """Queue new orders at the back; re-own orders already held (a re-sent order)."""
        now = time.time_ns()
        owners = self.owners
        feeder.accepted.extend(keys)
        if owners.keys().isdisjoint(keys):
            # The common case, at C speed: every id is new.
            before = len(owners)
            owners.update(zip(keys, repeat(feeder)))
            if len(owners) - before != len(keys):
                # An id repeated within the batch: queue its first occurrence only.
                seen: set[bytes] = set()
                fresh = []
                for i, key in enumerate(keys):
                    if key not in seen:
                        seen.add(key)
                        fresh.append(i)
                keys, bodies = [keys[i] for i in fresh], [bodies[i] for i in fresh]
        else:
            fresh = []
            for i, key in enumerate(keys):
                if key not in owners:
                    fresh.append(i)
                owners[key] = feeder  # a held order goes on with its newest stream
            keys, bodies = [keys[i] for i in fresh], [bodies[i] for i in fresh]
        if keys:
            self.queue.append(_Chunk(keys, bodies, queued_stamp(now), now))
            self.queued += len(keys)
            self.metrics.orders_received.inc(len(keys))
            self._dispatch()
        feeder.wake.set()

    def _dispatch(self) -> None:
        """Hand queued orders to predictors with credits, one batch per predictor."""
        if not self.queued:
            return
        ready = [p for p in self.predictors if p.credits > 0 and not p.closed]
        if not ready:
            return
        # Start at a different predictor each time so a trickle is spread over all of them.
        self._rotate = (self._rotate + 1) % len(ready)
        ready = ready[self._rotate :] + ready[: self._rotate]
        queue = self.queue
        oldest_ns = queue[0].ns
        sent = 0
        for pred in ready:
            n = min(pred.credits, self.queued)
            if n == 0:
                break
            pred.credits -= n
            self.queued -= n
            sent += n
            inflight = pred.inflight
            while n:
                chunk = queue[0]
                start = chunk.start
                left = len(chunk.keys) - start
                if n >= left:
                    queue.popleft()
                    take = left
                    if start:
                        keys, bodies = chunk.keys[start:], chunk.bodies[start:]
                    else:
                        keys, bodies = chunk.keys, chunk.bodies
                else:
                    take = n
                    keys = chunk.keys[start : start + n]
                    bodies = chunk.bodies[start : start + n]
                    chunk.start = start + n
                stamp = chunk.stamp
                inflight.update(zip(keys, repeat(_Sent(keys, bodies, stamp))))
                pred.outbox.append((bodies, stamp))
                n -= take
            pred.wake.set()
        if sent:
            self.metrics.orders_dispatched.inc(sent)
            self.metrics.queue_wait.observe(max(0, time.time_ns() - oldest_ns) / 1e9)
            if self.queued < self.capacity:
                self._room.set()

    def _complete(self, pred: _PredictorStream, done: list[bytes]) -> None:
        """Forget done orders and route each done notice to the feeder stream that owns it."""
        if not done:
            return
        deque(map(pred.inflight.pop, done, repeat(None)), maxlen=0)
        feeders = list(map(self.owners.pop, done, repeat(None)))
        first = feeders[0]
        if first is not None and feeders.count(first) == len(feeders):
            # The common case, at C speed: every order is held, all from one feeder.
            # (A closed stream's list is never sent: its feeder re-sends on reconnect.)
            first.done.extend(done)
            first.wake.set()
            count = len(done)
        else:
            touched: set[_FeederStream] = set()
            count = 0
            for key, feeder in zip(done, feeders, strict=True):
                if feeder is None:
                    continue  # not held (already done, or never seen): nothing to tell
                count += 1
                feeder.done.append(key)
                touched.add(feeder)
            for feeder in touched:
                feeder.wake.set()
        if count:
            self.metrics.orders_done.inc(count)

    def _requeue(self, pred: _PredictorStream) -> None:
        """Put a gone predictor's unfinished orders back at the front, in dispatch order."""
        left = pred.inflight
        pred.inflight = {}
        pred.outbox = []
        if left:
            chunks = []
            # One chunk per batch sent, in dispatch order, of its orders still in flight.
            for sent in dict.fromkeys(left.values()):
                kept = [i for i, key in enumerate(sent.keys) if left.get(key) is sent]
                keys = [sent.keys[i] for i in kept]
                bodies = [sent.bodies[i] for i in kept]
                chunks.append(_Chunk(keys, bodies, sent.stamp, stamp_ns(sent.stamp)))
            self.queue.extendleft(reversed(chunks))
            self.queued += len(left)
            self.metrics.orders_requeued.inc(len(left))
            log.warning(
                "predictor gone, orders requeued",
                extra={"predictor": pred.name, "requeued": len(left)},
            )
        self._dispatch()

    def _holds_orders_of(self, feeder: _FeederStream) -> bool:
        # A scan, but only after a feeder half-closed its stream, which feeders rarely do.
        return any(owner is feeder for owner in self.owners.values())

    async def _wait_for_room(self) -> None:
        while self.queued >= self.capacity:
            self._room.clear()
            await self._room.wait()

    # --- Submit (feeders) ------------------------------------------------------------------

    async def _read_submits(
        self, requests: AsyncIterator[SubmitBatch], feeder: _FeederStream
    ) -> None:
        """Admit batches while the queue has room; when it is full, stop reading."""
        try:
            async for request in requests:
                if request.feeder_id and feeder.name != request.feeder_id:
                    feeder.name = request.feeder_id
                keys, bodies = request.keys, request.bodies
                if request.anonymous:
                    log.warning("orders without an id dropped", extra={"feeder": feeder.name})
                    kept = [i for i, key in enumerate(keys) if key != _ANONYMOUS]
                    keys, bodies = [keys[i] for i in kept], [bodies[i] for i in kept]
                start = 0
                while start < len(keys):
                    await self._wait_for_room()
                    room = self.capacity - self.queued
                    if start == 0 and room >= len(keys):
                        self._admit(keys, bodies, feeder)
                        break
                    self._admit(keys[start : start + room], bodies[start : start + room], feeder)
                    start += room
        finally:
            feeder.ended = True
            feeder.wake.set()

    async def Submit(
        self,
        request_iterator: AsyncIterator[SubmitBatch],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        """Queue a feeder's orders; answer accepted ids, later done ids (see the proto)."""
        feeder = _FeederStream(context.peer())
        self.feeders.add(feeder)
        reader = asyncio.create_task(self._read_submits(request_iterator, feeder))
        log.info("feeder connected", extra={"feeder": feeder.name})
        try:
            while True:
                await feeder.wake.wait()
                feeder.wake.clear()
                if feeder.accepted or feeder.done:
                    response = encode_submit_response(feeder.accepted, feeder.done)
                    feeder.accepted = []
                    feeder.done = []
                    yield response
                if reader.done() and not self._holds_orders_of(feeder):
                    break
        finally:
            feeder.closed = True
            self.feeders.discard(feeder)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await reader
            log.info("feeder disconnected", extra={"feeder": feeder.name})

    # --- Work (predictors) -----------------------------------------------------------------

    async def _read_work(self, requests: AsyncIterator[WorkReport], pred: _PredictorStream) -> None:
        """Take credits and done reports; each message may free room and start a dispatch."""
        try:
            async for request in requests:
                if request.predictor_id and pred.name != request.predictor_id:
                    pred.name = request.predictor_id
                if request.done:
                    self._complete(pred, request.done)
                if request.credits:
                    pred.credits += request.credits
                self._dispatch()
        finally:
            pred.ended = True
            pred.credits = 0
            pred.wake.set()

    async def Work(
        self,
        request_iterator: AsyncIterator[WorkReport],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bytes]:
        """Send a predictor as many orders as its credits allow; requeue them if it goes."""
        pred = _PredictorStream(context.peer())
        self.predictors.append(pred)
        reader = asyncio.create_task(self._read_work(request_iterator, pred))
        log.info("predictor connected", extra={"predictor": pred.name})
        try:
            while True:
                await pred.wake.wait()
                pred.wake.clear()
                if pred.ended:
                    break  # it half-closed: it can report nothing more, so send nothing more
                if pred.outbox:
                    pieces = pred.outbox
                    pred.outbox = []
                    stamp = dispatched_stamp(time.time_ns())
                    for response in encode_work_responses(pieces, stamp, RESPONSE_BYTES):
                        yield response
        finally:
            pred.closed = True
            self.predictors.remove(pred)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await reader
            self._requeue(pred)
            log.info("predictor disconnected", extra={"predictor": pred.name})


async def main(settings: BalancerSettings) -> None:
    """Run the balancer until SIGTERM or SIGINT, then stop gracefully."""
    keep_big_buffers()

    def started(service: BalancerService) -> dict[str, object]:
        # Everything made so far lives as long as the process: keep the collector off it. Each
        # order makes a few short-lived tracked objects: collect the young less often, so that
        # most are gone before a collection sees them (a gen-0 pass is per object, not per
        # order).
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        return {"port": service.port, "queue_size": service.capacity}

    await run_service("balancer", settings, lambda: BalancerService(settings), started=started)
