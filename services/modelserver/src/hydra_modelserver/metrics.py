"""The model server's Prometheus metrics (names as in docs/contracts.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hydra_common.metrics import LATENCY_BUCKETS

# Signature names come from requests; anything but Hydra's two is counted as "other" so a
# client cannot grow the label set.
SIGNATURES = ("serving_default", "explain", "other")
OUTCOMES = ("ok", "not_found", "invalid_argument", "error")


def signature_label(name: str) -> str:
    """The metric label for a requested signature name (low cardinality)."""
    return name if name in SIGNATURES else "other"


class ModelServerMetrics:
    """Metrics of the bundled model server."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "hydra_modelserver_requests_total",
            "Predict requests, by signature and outcome.",
            ["signature", "outcome"],
            registry=registry,
        )
        self.predict_seconds = Histogram(
            "hydra_modelserver_predict_seconds",
            "Time to run one Predict request's batch through the model.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.models_loaded = Gauge(
            "hydra_modelserver_models_loaded",
            "Model versions loaded and servable.",
            registry=registry,
        )
        for signature in SIGNATURES:
            for outcome in OUTCOMES:
                self.requests.labels(signature, outcome)
