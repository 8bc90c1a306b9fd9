"""The plot types the feeder knows, re-read from the database every few seconds.

An expert adds a plot type, or stops ignoring one, while the feeder runs: files it skipped
for that plot type are then looked at again, without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hydra_common.logs import get_logger
from hydra_feeder.ledger import Ledger, PlotTypeInfo

log = get_logger(__name__)

PlotTypes = dict[str, PlotTypeInfo]


class PlotTypeRefresh:
    """Reads the plot types and hands each new set to ``on_change``."""

    def __init__(
        self, ledger: Ledger, interval: float, on_change: Callable[[PlotTypes], None]
    ) -> None:
        self._ledger = ledger
        self._interval = interval
        self._on_change = on_change
        self.current: PlotTypes = {}

    async def load(self) -> None:
        """Read the plot types at start."""
        self.current = await self._ledger.plot_types()
        self._on_change(self.current)

    async def refresh(self) -> None:
        """Read the plot types again; ``on_change`` hears of them only when they changed."""
        types = await self._ledger.plot_types()
        if types == self.current:
            return
        self.current = types
        self._on_change(types)
        log.info("plot types changed", extra={"plot_types": len(types)})

    async def run(self) -> None:
        """Refresh every ``interval`` seconds; a database error waits for the next time."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("could not read plot types", extra={"error": repr(exc)})
