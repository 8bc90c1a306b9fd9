"""The feeder: turns finished image files in the input directory into inference orders.

``FeederService`` builds the parts and runs their five tasks on one event loop:

- *watch* (``watch.Watcher``): inotify events mark files to look at now;
- *scan* (``intake.Intake``): a quick rescan every ``rescan_seconds`` (NFS gives no events;
  only directories whose mtime changed are read again) and a full one, every file stat'ed,
  every ``full_rescan_seconds``; the stability check, then naming, plot-type lookup, the
  ledger and validation of each stable file;
- *connection* (``sender.Sender``): one ``Submit`` stream to the balancer; on every
  (re)connect it re-sends every pending order (bytes re-read from disk), then streams new
  ones in batches;
- *flush* (``done.DoneFlusher``): writes done notices to the ledger in batches;
- *refresh* (``plot_types.PlotTypeRefresh``): re-reads the plot types.

They share the pending orders (``orders.PendingOrders``). A file becomes a pending ledger row
*before* its order is sent and a done row when the balancer reports it done, so neither a
feeder nor a balancer restart loses or repeats a file. At most ``feeder_window`` orders are
pending at once.
"""

from __future__ import annotations

import asyncio
import gc

from prometheus_client import REGISTRY, CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.logs import get_logger
from hydra_common.runner import run_service
from hydra_feeder.done import DoneFlusher
from hydra_feeder.intake import Intake
from hydra_feeder.ledger import Ledger
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import make_parser
from hydra_feeder.orders import Pending, PendingOrders
from hydra_feeder.plot_types import PlotTypeRefresh
from hydra_feeder.sender import Sender
from hydra_feeder.settings import FeederSettings
from hydra_feeder.watch import ScanRequests, Watcher

log = get_logger(__name__)

GC_THRESHOLD = 50_000  # allocations between young-generation collections (Python's: 700)


class FeederService:
    """Watches the input directory and feeds finished, valid images to the balancer."""

    def __init__(self, settings: FeederSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else REGISTRY
        self.metrics = FeederMetrics(self.registry)
        # The engine connects on first use, in start().
        self._engine = make_engine(settings.db_url)
        self.ledger = Ledger(self._engine, self.metrics.ledger_write_errors)
        self.orders = PendingOrders(settings.feeder_window)
        self.metrics.bind(lambda: len(self.orders))
        parse = make_parser(settings.file_pattern)
        requests = ScanRequests()
        self._stop = asyncio.Event()
        self.watcher = Watcher(
            settings.input_root,
            settings.quarantine_root,
            requests,
            self._stop,
            self.metrics.watching,
            self.metrics.watch_restarts,
        )
        self.intake = Intake(settings, parse, self.ledger, self.orders, requests, self.metrics)
        self.done = DoneFlusher(self.ledger, self.orders, self.metrics.orders_done)
        self.sender = Sender(
            settings,
            parse,
            self.orders,
            self.done,
            self.intake.forget,
            self.metrics.rejected.labels("vanished"),
        )
        self.refresher = PlotTypeRefresh(
            self.ledger, settings.feeder_refresh_seconds, self.intake.use_plot_types
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pending(self) -> dict[str, Pending]:
        """Orders fed and not done, by order id, oldest first."""
        return self.orders.orders

    @property
    def connected(self) -> bool:
        """Whether the balancer stream is up."""
        return self.sender.connected

    @property
    def connections(self) -> int:
        """How many times the balancer stream came up."""
        return self.sender.connections

    async def refresh_plot_types(self) -> None:
        """Re-read plot types; files skipped for a plot type that is now active are retried."""
        await self.refresher.refresh()

    async def start(self) -> None:
        """Load plot types and pending orders, then start watching, scanning and sending."""
        await self.refresher.load()
        self.orders.restore(await self.ledger.pending())
        root = self.settings.input_root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create input dir", extra={"path": str(root), "error": exc})
        for name, job in (
            ("watch", self.watcher.run()),
            ("scan", self.intake.run()),
            ("connection", self.sender.run()),
            ("flush", self.done.run()),
            ("refresh", self.refresher.run()),
        ):
            self._tasks.append(asyncio.create_task(job, name=f"feeder-{name}"))
        log.info(
            "feeder started",
            extra={
                "input_dir": str(root),
                "balancer": self.settings.balancer_address,
                "plot_types": len(self.refresher.current),
                "pending": len(self.orders),
            },
        )

    async def stop(self) -> None:
        """Stop every task and write the done notices received so far."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.done.flush()
        await self._engine.dispose()
        log.info("feeder stopped", extra={"pending": len(self.orders)})


def settle_collector() -> None:
    """Keep the garbage collector off what start-up made, and collect the young less often.

    Start-up's objects (modules, the engine, gRPC, the plot types) live as long as the
    process, and a full collection walked every one of them: at a trickle of files that was
    most of the feeder's CPU. Each rescan makes a stat per file found: collected less often,
    most are gone before a collection sees them.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def main(settings: FeederSettings) -> None:
    """Run the feeder until SIGTERM or SIGINT, then stop."""
    from hydra_common.db.migrate import wait_for_database

    def started(_service: FeederService) -> dict[str, object]:
        settle_collector()
        return {}

    await run_service(
        "feeder",
        settings,
        lambda: FeederService(settings),
        prepare=lambda: wait_for_database(settings.db_url),
        started=started,
    )
