"""``run_service``: one lifecycle for every service (logging, metrics, start, signals, stop)."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from hydra_common.ports import free_port
from hydra_common.runner import run_service
from hydra_common.settings import HydraSettings


class Toy:
    """A service that records what the lifecycle did to it."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.calls.append("built")

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def test_a_service_runs_until_sigterm_then_stops_with_metrics_served() -> None:
    calls: list[str] = []
    registry = CollectorRegistry()
    Counter("hydra_toy_things", "things", registry=registry).inc(3)
    port = free_port()
    settings = HydraSettings(metrics_port=port, metrics_host="127.0.0.1")
    loop = asyncio.get_running_loop()

    async def prepare() -> None:
        calls.append("prepare")

    scraped: list[str] = []

    def started(service: Toy) -> dict[str, object]:
        calls.append("ready")
        # The metrics endpoint is up by now (its own thread), serving the service's registry;
        # scraped here, before the stop (a scrape racing the start-up could find nothing).
        scraped.append(_scrape(port))
        loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
        return {}

    try:
        task = asyncio.create_task(
            run_service(
                "toy",
                settings,
                lambda: Toy(calls),
                registry=registry,
                prepare=prepare,
                started=started,
            )
        )
        service = await asyncio.wait_for(task, 60)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    assert len(scraped) == 1 and "hydra_toy_things_total 3.0" in scraped[0]
    assert calls == ["prepare", "built", "start", "ready", "stop"]
    assert service.calls is calls


async def test_a_stop_event_ends_the_service_and_metrics_can_be_off() -> None:
    calls: list[str] = []
    stop = asyncio.Event()
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()

    def started(_service: Toy) -> dict[str, object]:
        ready.set()
        return {}

    try:
        task = asyncio.create_task(
            run_service(
                "toy", HydraSettings(metrics_port=0), lambda: Toy(calls), stop=stop, started=started
            )
        )
        await asyncio.wait_for(ready.wait(), 60)
        assert "stop" not in calls  # it waits for the stop
        stop.set()
        await asyncio.wait_for(task, 60)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    assert calls == ["built", "start", "stop"]
