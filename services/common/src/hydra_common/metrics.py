"""Prometheus helpers: the `/metrics` and `/livez` endpoints and shared bucket layouts.

Each service declares its metrics in its own ``metrics.py`` as a class that takes a
``CollectorRegistry`` (tests use their own registry). Names carry units and labels stay
low-cardinality: never an order id, a run number or a user.

The metrics server runs in a thread, so it answers even when the service's event loop is
stuck. ``/livez`` is what a liveness probe asks instead: it answers 200 only while a heartbeat,
beaten by a task on the service's event loop, is fresh, and 503 once the loop stopped turning.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

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

LIVEZ_PATH = "/livez"
HEARTBEAT_MAX_AGE_SECONDS = 30.0
# A beat every 5 s keeps a turning loop's heartbeat at most ~5 s old, far inside the 30 s
# of max age; a stuck loop still reads stuck 30 s after its last beat. (A beat a second
# cost every idle service about 0.2 ms CPU/s in wake-ups, for nothing /livez needs.)
HEARTBEAT_INTERVAL_SECONDS = 5.0
# How often the metrics thread's serve_forever wakes with nothing to serve. Requests are
# answered as they arrive whatever this is; it only bounds how long a ``shutdown()`` would
# wait, and nothing shuts this daemon thread down. (Python's 0.5 s default cost every idle
# service about 0.2 ms CPU/s.)
METRICS_POLL_SECONDS = 60.0


class Heartbeat:
    """The time the service's event loop last turned, as a task on that loop records it."""

    def __init__(
        self,
        max_age: float = HEARTBEAT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self.last = clock()
        self._task: asyncio.Task[None] | None = None

    def beat(self) -> None:
        """Record that the loop turned now."""
        self.last = self.clock()

    def age(self) -> float:
        """Seconds since the last beat."""
        return self.clock() - self.last

    def fresh(self) -> bool:
        """True while the last beat is younger than ``max_age``."""
        return self.age() < self.max_age

    async def run(self, interval: float = HEARTBEAT_INTERVAL_SECONDS) -> None:
        """Beat every ``interval`` seconds, for as long as the loop runs this task."""
        while True:
            self.beat()
            await asyncio.sleep(interval)

    def start(self, interval: float = HEARTBEAT_INTERVAL_SECONDS) -> asyncio.Task[None]:
        """Start (once) the beating task on the running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self.run(interval), name="hydra-heartbeat"
            )
        return self._task


def metrics_app(registry: CollectorRegistry, heartbeat: Heartbeat) -> Callable[..., Any]:
    """A WSGI app: ``/livez`` from the heartbeat, everything else Prometheus's exposition."""
    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == LIVEZ_PATH:
            age = heartbeat.age()
            ok = heartbeat.fresh()
            status = "200 OK" if ok else "503 Service Unavailable"
            body = f"{'ok' if ok else 'stuck'} heartbeat_age_seconds={age:.1f}\n".encode()
            start_response(status, [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
            return [body]
        result: Iterable[bytes] = exposition(environ, start_response)
        return result

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the service's log."""


def start_metrics_server(
    registry: CollectorRegistry, port: int, host: str, heartbeat: Heartbeat
) -> int:
    """Serve ``/metrics`` and ``/livez`` from a daemon thread; port 0 = any; returns the port."""
    server = make_server(
        host, port, metrics_app(registry, heartbeat), ThreadingWSGIServer, _QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": METRICS_POLL_SECONDS},
        name="hydra-metrics",
        daemon=True,
    )
    thread.start()
    return int(server.server_port)


HEARTBEAT = Heartbeat()


def serve_metrics(
    registry: CollectorRegistry,
    port: int,
    host: str = "0.0.0.0",
    heartbeat: Heartbeat | None = None,
) -> int:
    """Serve ``/metrics`` and ``/livez`` on port (0 = off); returns the bound port or 0.

    Called from the service's event loop (every service's ``main`` does), it also starts the
    heartbeat task there, so ``/livez`` reports that loop.
    """
    if port <= 0:
        return 0
    heartbeat = heartbeat or HEARTBEAT
    try:
        heartbeat.start()
    except RuntimeError:
        pass  # no running loop (a synchronous caller): /livez then goes stale after max_age
    return start_metrics_server(registry, port, host, heartbeat)
