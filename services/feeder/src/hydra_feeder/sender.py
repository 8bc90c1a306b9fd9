"""The feeder's one ``Submit`` stream to the balancer.

On every (re)connect the stream re-sends every pending order, oldest first: the balancer may
have lost its queue (a restart), and one that still holds an order knows it by its id. An
order whose bytes were already handed to gRPC is rebuilt from its ledger entry, its file
read again; a file that vanished or changed since it was fed ends its order unsent (the scan
feeds a changed file as a new order).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
from hydra.v1 import balancer_pb2, balancer_pb2_grpc
from hydra.v1.order_pb2 import InferenceOrder
from prometheus_client import Counter

from hydra_common.grpcserver import Backoff, channel, describe_rpc_error
from hydra_common.logs import get_logger
from hydra_feeder.done import DoneFlusher
from hydra_feeder.ledger import LedgerEntry
from hydra_feeder.naming import Parser
from hydra_feeder.orders import PendingOrders, make_order
from hydra_feeder.scanner import stat_file
from hydra_feeder.settings import FeederSettings
from hydra_feeder.validate import Rejected, check_inside, read_file

log = get_logger(__name__)


class Sender:
    """Keeps one Submit stream open and sends the pending orders down it in batches."""

    def __init__(
        self,
        settings: FeederSettings,
        parse: Parser,
        pending: PendingOrders,
        done: DoneFlusher,
        forget: Callable[[str], None],
        vanished: Counter,
    ) -> None:
        self._address = settings.balancer_address
        self._feeder_id = settings.name
        self._batch = settings.feeder_batch
        self._max_file_bytes = settings.max_file_bytes
        self._root = settings.input_root
        self._parse = parse
        self._pending = pending
        self._done = done
        self._forget = forget  # the intake judges a rewritten file afresh
        self._vanished = vanished
        self.connected = False
        self.connections = 0
        self._generation = 0

    async def run(self) -> None:
        """Keep one Submit stream open; every (re)connect re-sends every pending order."""
        backoff = Backoff(0.1)  # at most a second: the balancer is dialled soon after it is back
        while True:
            self._generation += 1
            self._pending.send_all_again()
            ch = channel(self._address)
            try:
                stub = balancer_pb2_grpc.BalancerServiceStub(ch)
                call = stub.Submit(self._requests(self._generation))
                async for response in call:
                    if not self.connected:
                        self.connected = True
                        self.connections += 1
                        backoff.reset()
                        log.info("connected to balancer", extra={"pending": len(self._pending)})
                    if response.done:
                        self._done.on_done(response.done)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "balancer stream broke",
                    extra={"error": describe_rpc_error(exc), "pending": len(self._pending)},
                )
            except Exception:
                log.exception("balancer stream failed", extra={"pending": len(self._pending)})
            finally:
                self.connected = False
                await ch.close()
            await backoff.wait()

    async def _requests(self, generation: int) -> AsyncIterator[balancer_pb2.SubmitRequest]:
        """Batches of orders for one stream; the bytes are dropped once handed to gRPC."""
        while generation == self._generation:
            ids = self._pending.take_unsent(self._batch)
            if not ids:
                await self._pending.wait_for_unsent()
                continue
            orders = []
            for oid in ids:
                pending = self._pending.orders.get(oid)
                if pending is None:
                    continue  # done meanwhile
                order = pending.order or await self._rebuild(pending.entry)
                pending.order = None
                if order is not None:
                    orders.append(order)
            if orders:
                yield balancer_pb2.SubmitRequest(orders=orders, feeder_id=self._feeder_id)

    async def _rebuild(self, entry: LedgerEntry) -> InferenceOrder | None:
        """A pending order again, its bytes re-read; a gone or changed file ends it."""
        rel = entry.source_path
        parsed = self._parse(rel)
        stat = stat_file(self._root / rel)
        if stat is None:
            self._end_unsent(entry, "vanished")
            return None
        if parsed is None or (stat.size, stat.mtime_ns) != (entry.file_size, entry.file_mtime_ns):
            # Rewritten since it was fed: the scan feeds the new version as a new order.
            self._forget(rel)
            self._end_unsent(entry, "changed")
            return None
        try:
            data = await asyncio.to_thread(
                lambda: read_file(check_inside(self._root / rel, self._root), self._max_file_bytes)
            )
        except (OSError, Rejected) as exc:
            self._end_unsent(entry, "vanished", repr(exc))
            return None
        return make_order(entry.order_id, rel, parsed, stat, data)

    def _end_unsent(self, entry: LedgerEntry, reason: str, detail: str = "") -> None:
        """Mark a pending order done without sending it."""
        self._pending.end([entry.order_id])
        self._done.add([entry.order_id])
        if reason == "vanished":
            self._vanished.inc()
        log.warning(
            "pending order ended without sending",
            extra={
                "order_id": entry.order_id,
                "path": entry.source_path,
                "reason": reason,
                "detail": detail,
            },
        )
