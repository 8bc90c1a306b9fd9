"""The feeder's Prometheus metrics (names as in docs/contracts.md)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hydra_common.metrics import LATENCY_BUCKETS
from hydra_feeder.validate import REASONS

OUTCOMES = ("fed", "skipped", "quarantined")


class FeederMetrics:
    """Every metric the feeder exports, label sets pre-initialised."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.files = Counter(
            "hydra_feeder_files",
            "Files handled, by outcome (fed, skipped: unknown or ignored plot type, quarantined).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.files.labels(outcome)
        self.rejected = Counter(
            "hydra_feeder_rejected",
            "Files not fed, by reason (skipped and quarantined alike).",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:
            self.rejected.labels(reason)
        self.orders_pending = Gauge(
            "hydra_feeder_orders_pending", "Orders fed and not done yet.", registry=registry
        )
        self.orders_done = Counter(
            "hydra_feeder_orders_done", "Orders the balancer reported done.", registry=registry
        )
        self.watching = Gauge(
            "hydra_feeder_watching",
            "1 while the inotify watcher runs; 0 while it restarts (rescans still find files).",
            registry=registry,
        )
        self.watch_restarts = Counter(
            "hydra_feeder_watch_restarts",
            "Times the inotify watcher failed and was started again.",
            registry=registry,
        )
        self.ledger_write_errors = Counter(
            "hydra_feeder_ledger_write_errors",
            "Ledger writes (new orders, done notices) that failed: the database down or full."
            " Retried; no new file is fed while they fail.",
            registry=registry,
        )
        self.requeued = Counter(
            "hydra_feeder_requeued",
            "Files quarantined as truncated or empty that their writer finished: moved back.",
            registry=registry,
        )
        self.read_seconds = Histogram(
            "hydra_feeder_read_seconds",
            "Time to read and validate one file.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def bind(self, pending: Callable[[], float]) -> None:
        """Compute the pending gauge from the feeder's state at scrape time."""
        self.orders_pending.set_function(pending)
