"""Prometheus helpers: the `/metrics` endpoint and shared bucket layouts.

Each service declares its metrics in its own ``metrics.py`` as a class that takes a
``CollectorRegistry`` (tests use their own registry). Names carry units and labels stay
low-cardinality: never an order id, a run number or a user.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` for the registry on port (0 = off); returns the bound port or 0."""
    if port <= 0:
        return 0
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
