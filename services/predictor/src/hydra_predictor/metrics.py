"""The predictor's Prometheus metrics (names as in docs/contracts.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hydra_common.metrics import BATCH_BUCKETS, LATENCY_BUCKETS

SIGNATURES = ("serving_default", "explain")
STATUSES = ("ok", "no_model", "error")
SHADOW_STATUSES = ("ok", "error")


class PredictorMetrics:
    """Metrics of one predictor replica."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "hydra_predictor_batch_size",
            "Images per Predict call.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.predict_seconds = Histogram(
            "hydra_predictor_predict_seconds",
            "Duration of Predict calls to the model server, by signature.",
            ["signature"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.reports = Counter(
            "hydra_predictor_reports_total",
            "Reports produced, by status.",
            ["status"],
            registry=registry,
        )
        self.model_server_errors = Counter(
            "hydra_predictor_model_server_errors_total",
            "Failed Predict calls (any gRPC error or timeout).",
            registry=registry,
        )
        self.keeper_ack_seconds = Histogram(
            "hydra_predictor_keeper_ack_seconds",
            "Time from sending a report to the keeper until it acknowledged it.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.active_models = Gauge(
            "hydra_predictor_active_models",
            "Plot types with an active model, as last read from the database.",
            registry=registry,
        )
        self.shadow_models = Gauge(
            "hydra_predictor_shadow_models",
            "Plot types with a model in shadow, as last read from the database.",
            registry=registry,
        )
        self.shadow_results = Counter(
            "hydra_predictor_shadow_results_total",
            "Shadow-model results attached to reports, by status.",
            ["status"],
            registry=registry,
        )
        for status in SHADOW_STATUSES:
            self.shadow_results.labels(status)
        for signature in SIGNATURES:
            self.predict_seconds.labels(signature)
        for status in STATUSES:
            self.reports.labels(status)
