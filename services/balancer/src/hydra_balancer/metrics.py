"""The balancer's Prometheus metrics (names as in docs/contracts.md).

Gauges that mirror the balancer's state (queue depth, orders in flight, connections) are
computed when Prometheus scrapes, so the hot path pays nothing for them; counters are
incremented once per batch, never once per order.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hydra_common.metrics import LATENCY_BUCKETS


class BalancerMetrics:
    """Every metric the balancer exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            "hydra_balancer_queue_depth",
            "Orders waiting in the queue for a predictor (predictors scale on this).",
            registry=registry,
        )
        self.queue_capacity = Gauge(
            "hydra_balancer_queue_capacity", "Most orders the queue holds.", registry=registry
        )
        self.inflight_orders = Gauge(
            "hydra_balancer_inflight_orders",
            "Orders sent to predictors and not reported done yet.",
            registry=registry,
        )
        self.predictors_connected = Gauge(
            "hydra_balancer_predictors_connected", "Open predictor work streams.", registry=registry
        )
        self.feeders_connected = Gauge(
            "hydra_balancer_feeders_connected", "Open feeder submit streams.", registry=registry
        )
        self.orders_received = Counter(
            "hydra_balancer_orders_received",
            "Orders accepted into the queue (duplicates of held orders not counted).",
            registry=registry,
        )
        self.orders_dispatched = Counter(
            "hydra_balancer_orders_dispatched", "Orders sent to predictors.", registry=registry
        )
        self.orders_done = Counter(
            "hydra_balancer_orders_done", "Orders predictors reported done.", registry=registry
        )
        self.orders_requeued = Counter(
            "hydra_balancer_orders_requeued",
            "Orders put back at the front of the queue after a predictor's stream ended.",
            registry=registry,
        )
        self.queue_wait = Histogram(
            "hydra_balancer_queue_wait_seconds",
            "Time the oldest order of each dispatched batch waited in the queue.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def bind(
        self,
        queue_depth: Callable[[], float],
        capacity: int,
        inflight: Callable[[], float],
        predictors: Callable[[], float],
        feeders: Callable[[], float],
    ) -> None:
        """Compute the state gauges from the balancer's own structures at scrape time."""
        self.queue_depth.set_function(queue_depth)
        self.queue_capacity.set(capacity)
        self.inflight_orders.set_function(inflight)
        self.predictors_connected.set_function(predictors)
        self.feeders_connected.set_function(feeders)
