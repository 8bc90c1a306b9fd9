"""Done notices: the balancer reports an order done once the keeper has its report.

The notice ends the pending order at once (the window has room again) and is written to the
ledger a moment later, as many per transaction as have arrived meanwhile. A notice the
ledger could not take is kept and written again: marking done is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from prometheus_client import Counter

from hydra_common.logs import get_logger
from hydra_feeder.ledger import Ledger
from hydra_feeder.orders import PendingOrders

log = get_logger(__name__)

RETRY_SECONDS = 1.0  # pause after the ledger failed, before writing the notices again


class DoneFlusher:
    """Ends pending orders the balancer reports done and writes them done in the ledger."""

    def __init__(self, ledger: Ledger, pending: PendingOrders, orders_done: Counter) -> None:
        self._ledger = ledger
        self._pending = pending
        self._orders_done = orders_done
        self._ids: list[str] = []
        self._wake = asyncio.Event()

    @property
    def unwritten(self) -> int:
        """Notices received and not written to the ledger yet."""
        return len(self._ids)

    def on_done(self, ids: Iterable[str]) -> None:
        """The balancer reported these orders done (ids no longer pending are ignored)."""
        ended = self._pending.end(ids)
        if ended:
            self._orders_done.inc(len(ended))
            self.add(ended)

    def add(self, ids: Iterable[str]) -> None:
        """Write these orders done with the next batch."""
        self._ids.extend(ids)
        self._wake.set()

    async def run(self) -> None:
        """Write notices as they arrive; after a failure, again a moment later."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def flush(self) -> bool:
        """Write the notices received so far in one transaction; False when the ledger failed
        (they are kept, ahead of any that arrive meanwhile)."""
        if not self._ids:
            return True
        ids, self._ids = self._ids, []
        try:
            await self._ledger.mark_done(ids)
        except asyncio.CancelledError:
            # Stopping mid-write: stop() writes them again.
            self._ids = ids + self._ids
            raise
        except Exception:
            log.exception("could not mark orders done", extra={"orders": len(ids)})
            self._ids = ids + self._ids
            return False
        return True
