"""The API's Prometheus metrics (names as in docs/contracts.md) and the middleware that counts.

The ``route`` label is the route's template (``/api/models/{model_id}``), never the raw path,
so the label set stays small; requests that match no route count as ``other``.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hydra_common.metrics import LATENCY_BUCKETS


class ApiMetrics:
    """Every metric the API exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "hydra_api_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "hydra_api_request_seconds",
            "Time to answer an HTTP request (event streams: how long they stayed open).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sse_clients = Gauge(
            "hydra_api_sse_clients", "Open server-sent-event streams.", registry=registry
        )
        # Series the dashboards plot exist from the start.
        for route in ("/api/runtime", "/api/health", "/api/files/{path:path}"):
            self.requests.labels("GET", route, "200")
            self.request_seconds.labels("GET", route)


def route_template(scope: Scope) -> str:
    """The template of the route that answered, or ``other``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "other"


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class MetricsMiddleware:
    """Pure ASGI middleware (streams pass through untouched) that counts every request and
    adds the security headers."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                # Every answer, pages and images alike, refuses sniffing and framing.
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in SECURITY_HEADERS if k not in present),
                ]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, route, str(status["code"])).inc()
            self.metrics.request_seconds.labels(method, route).observe(time.perf_counter() - start)
