"""/livez of the metrics server: 200 while the event loop beats, 503 once it stops."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from hydra_common import metrics
from hydra_common.metrics import Heartbeat, serve_metrics, start_metrics_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_livez_follows_the_heartbeat_and_metrics_still_answer() -> None:
    clock = FakeClock()
    heartbeat = Heartbeat(max_age=30, clock=clock)
    registry = CollectorRegistry()
    Counter("hydra_test_things", "Things.", registry=registry).inc(3)
    port = start_metrics_server(registry, 0, "127.0.0.1", heartbeat)
    assert get(port, "/livez")[0] == 200
    clock.now += 29.9
    assert get(port, "/livez")[0] == 200
    clock.now += 0.2  # 30.1 s without a beat: the loop is stuck
    status, body = get(port, "/livez")
    assert status == 503 and "stuck" in body
    # /metrics is served by the thread regardless: that is why it is no liveness signal.
    status, body = get(port, "/metrics")
    assert status == 200 and "hydra_test_things_total 3.0" in body
    heartbeat.beat()
    assert get(port, "/livez")[0] == 200


async def test_serve_metrics_beats_from_the_running_loop() -> None:
    clock = FakeClock()
    heartbeat = Heartbeat(max_age=30, clock=clock)
    heartbeat.last = clock.now - 100  # stale before the loop's task ran
    port = free_port()
    bound = serve_metrics(CollectorRegistry(), port, "127.0.0.1", heartbeat)
    assert bound == port
    for _ in range(200):  # the task beats at once; give the loop turns, not wall time
        if heartbeat.fresh():
            break
        await asyncio.sleep(0)
    assert heartbeat.fresh()
    assert (await asyncio.to_thread(get, port, "/livez"))[0] == 200
    assert serve_metrics(CollectorRegistry(), 0) == 0  # port 0 = off


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_heartbeat_beats_every_few_seconds_well_inside_its_max_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A beat every 5 s, not every second (idle wake-ups cost every service CPU), and still
    often enough that a turning loop never looks stuck: several beats per max age."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) >= 3:
            raise asyncio.CancelledError

    monkeypatch.setattr("hydra_common.metrics.asyncio.sleep", sleep)  # asyncio.sleep itself
    clock = FakeClock()
    heartbeat = Heartbeat(clock=clock)
    heartbeat.last = 0.0
    with pytest.raises(asyncio.CancelledError):
        await heartbeat.run()
    assert heartbeat.last == clock.now  # it beat before its first wait
    assert waits == [metrics.HEARTBEAT_INTERVAL_SECONDS] * 3
    assert 5.0 <= metrics.HEARTBEAT_INTERVAL_SECONDS <= heartbeat.max_age / 3
