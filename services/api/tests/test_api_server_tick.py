"""Uvicorn's main loop in the API wakes once a second, not ten times, and still stops at
once when asked to exit. A real server on a loopback port, on the test database."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from hydra_api.main import TICK_SECONDS, _Server, create_app
from hydra_api.settings import ApiSettings
from hydra_testsupport.polling import eventually_async


class _Counting(_Server):
    """The API's server, recording each tick's counter."""

    ticks: list[int]

    async def on_tick(self, counter: int) -> bool:
        self.ticks.append(counter)
        return await super().on_tick(counter)


async def test_the_server_ticks_once_a_second_and_stops_at_once(
    settings_factory: Callable[..., ApiSettings],
) -> None:
    app = create_app(settings_factory(), CollectorRegistry())
    server = _Counting(uvicorn.Config(app, log_config=None, lifespan="on"), app)
    server.ticks = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually_async(lambda: server.started, "the API started")
        loop = asyncio.get_running_loop()
        started, first = loop.time(), len(server.ticks)
        await asyncio.sleep(2.5 * TICK_SECONDS)
        ticks = len(server.ticks) - first
        elapsed = loop.time() - started
        # Uvicorn's own loop ticks every 0.1 s (about 25 here); at most one per second now.
        assert 1 <= ticks <= elapsed / TICK_SECONDS + 1, (ticks, elapsed)
        # Every tick refreshes the Date header (uvicorn does on counters divisible by 10).
        assert all(c % 10 == 0 for c in server.ticks)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            resp = await client.get("/api/health")
        assert resp.status_code == 200
        assert parsedate_to_datetime(resp.headers["date"]).year >= 2024
    finally:
        server.should_exit = True
        # The exit wakes the loop: no tick after the flag is needed to notice it.
        await asyncio.wait_for(task, 30)
    assert server.should_exit
    assert task.exception() is None
