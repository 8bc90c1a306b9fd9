"""One lifecycle for every long-running service: ``run_service()``.

Structured logging, the ``/metrics`` and ``/livez`` endpoint, start, SIGTERM/SIGINT through
the event loop (so the shutdown is awaited, not interrupted), wait, then a graceful stop:
the same steps in every service, so each service's ``main()`` says only what is its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

from hydra_common.grpcserver import install_stop_signals
from hydra_common.logs import setup_logging
from hydra_common.metrics import serve_metrics
from hydra_common.settings import HydraSettings

log = logging.getLogger(__name__)


class Startable(Protocol):
    """What ``run_service`` runs: a service that starts and stops."""

    async def start(self) -> None:
        """Start serving (bind ports, start background tasks)."""

    async def stop(self) -> None:
        """Stop gracefully: drain what is in flight, then release everything."""


S = TypeVar("S", bound=Startable)


async def run_service(
    name: str,
    settings: HydraSettings,
    build: Callable[[], S],
    *,
    registry: CollectorRegistry | None = None,
    prepare: Callable[[], Awaitable[None]] | None = None,
    started: Callable[[S], Mapping[str, object]] | None = None,
    stop: asyncio.Event | None = None,
) -> S:
    """Run one service until SIGTERM or SIGINT (or ``stop`` is set), then stop it.

    In order: logging as ``name``; ``prepare()`` (waiting for the database, say); the metrics
    endpoint on ``settings.metrics_port`` (0: off) serving ``registry``; ``build()``; the stop
    signals; ``start()``; a "ready" log line with the fields ``started(service)`` returns;
    the wait; ``stop()``, even when the wait is cancelled. Returns the stopped service.
    """
    setup_logging(name, settings.log_level, settings.log_format)
    if prepare is not None:
        await prepare()
    metrics_port = serve_metrics(
        REGISTRY if registry is None else registry, settings.metrics_port, settings.metrics_host
    )
    service = build()
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    await service.start()
    fields = dict(started(service)) if started is not None else {}
    log.info(f"{name} ready", extra={"metrics_port": metrics_port, **fields})
    try:
        await stop.wait()
    finally:
        log.info(f"{name} stopping")
        await service.stop()
    return service
