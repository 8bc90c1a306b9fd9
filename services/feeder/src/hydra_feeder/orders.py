"""The feeder's pending orders: fed, recorded in the ledger, and not done yet.

The intake adds orders once the ledger holds them and waits while ``window`` of them are
pending; the sender sends them (all of them again on every new balancer stream); done notices
end them. Every part sees the orders through this one object, on one event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from hydra.v1.order_pb2 import InferenceOrder

from hydra_feeder.ledger import LedgerEntry
from hydra_feeder.naming import ParsedName
from hydra_feeder.scanner import FileStat


@dataclass
class Pending:
    """An order fed and not done; ``order`` holds it (with its bytes) until it is sent."""

    entry: LedgerEntry
    order: InferenceOrder | None = None


class PendingOrders:
    """Pending orders by id, oldest first, and the ids the current stream has yet to send."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.orders: dict[str, Pending] = {}
        self.unsent: deque[str] = deque()
        self._send_wake = asyncio.Event()
        self._room = asyncio.Event()

    def __len__(self) -> int:
        return len(self.orders)

    def restore(self, entries: Iterable[LedgerEntry]) -> None:
        """Take back the ledger's pending entries at start (their bytes are read when sent)."""
        for entry in entries:
            self.orders[entry.order_id] = Pending(entry)

    def add(self, fed: Iterable[tuple[LedgerEntry, InferenceOrder]]) -> None:
        """Queue orders the ledger now holds as pending, and wake the sender."""
        for entry, order in fed:
            self.orders[entry.order_id] = Pending(entry, order)
            self.unsent.append(entry.order_id)
        self._send_wake.set()

    def room(self) -> int:
        """How many more orders the window takes now."""
        return self.window - len(self.orders)

    async def wait_for_room(self) -> None:
        """Wait until the window has room again (an order ends)."""
        while len(self.orders) >= self.window:
            self._room.clear()
            await self._room.wait()

    def end(self, ids: Iterable[str]) -> list[str]:
        """Forget these orders; returns those that were pending."""
        orders = self.orders
        ended = [oid for oid in ids if orders.pop(oid, None) is not None]
        if ended:
            self._room.set()
        return ended

    def send_all_again(self) -> None:
        """A new stream: every pending order is to be sent on it, oldest first."""
        self.unsent = deque(self.orders)

    def take_unsent(self, most: int) -> list[str]:
        """Up to ``most`` ids to send next (some may end before they are sent)."""
        unsent = self.unsent
        return [unsent.popleft() for _ in range(min(most, len(unsent)))]

    async def wait_for_unsent(self) -> None:
        """Wait until the intake adds orders."""
        self._send_wake.clear()
        await self._send_wake.wait()


def make_order(
    order_id: str, rel: str, parsed: ParsedName, stat: FileStat, data: bytes
) -> InferenceOrder:
    """The inference order of a file; the same for a new order and for one sent again."""
    order = InferenceOrder(
        order_id=order_id,
        plot_type=parsed.plot_type,
        run_period=parsed.run_period,
        run_number=parsed.run_number,
        chunk=parsed.chunk,
        source_path=rel,
        image=data,
        file_size=stat.size,
    )
    order.stages.file_ns = stat.mtime_ns
    order.stages.fed_ns = time.time_ns()
    return order
