"""The Status page shows services without a database heartbeat from their own /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hydra_api.probes import StatusProbe, Target, figures, parse_targets
from hydra_api.settings import ApiSettings
from hydra_common.launcher import free_port


@pytest.fixture
def balancer_metrics() -> Iterator[tuple[str, Gauge]]:
    """A real Prometheus endpoint exporting the balancer's figures."""
    registry = CollectorRegistry()
    depth = Gauge("hydra_balancer_queue_depth", "Orders waiting.", registry=registry)
    Gauge("hydra_balancer_inflight_orders", "In flight.", registry=registry).set(12)
    Counter("hydra_balancer_orders_done", "Done.", ["x"], registry=registry).labels("a").inc(5)
    Histogram("hydra_balancer_queue_wait_seconds", "Wait.", registry=registry).observe(0.1)
    depth.set(7)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics", depth
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_status_page_shows_queue_depth_and_unreachable_services(
    api_factory: Any, balancer_metrics: tuple[str, Gauge]
) -> None:
    url, depth = balancer_metrics
    dead = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    # A generous timeout: the endpoint is a thread of this busy process (the dead port is
    # refused at once, so the test does not wait for it).
    api = await api_factory(
        status_targets=f"balancer={url}, feeder={dead}", status_probe_timeout=10
    )
    body = (await api.client.get("/api/status")).json()
    by_service = {s["service"]: s for s in body["services"]}

    balancer = by_service["balancer"]
    assert balancer["alive"] is True and balancer["state"] == "serving"
    assert balancer["details"]["queue_depth"] == 7
    assert balancer["details"]["inflight_orders"] == 12
    assert balancer["details"]["orders_done"] == 5  # counters summed over labels, no _total
    assert not any("wait" in k for k in balancer["details"])  # histograms left out
    assert balancer["instance"] == url.split("/")[2]

    feeder = by_service["feeder"]
    assert feeder["alive"] is False and feeder["state"] == "unreachable"
    assert feeder["last_seen"] is None and "error" in feeder["details"]

    # Readings are shared for a few seconds; a fresh probe sees the new depth.
    depth.set(3)
    fresh = StatusProbe([Target("balancer", url)], timeout=10, max_age=0)
    (reading,) = await fresh.read()
    assert reading.ok and reading.details["queue_depth"] == 3


def test_bad_status_targets_are_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="service=URL"):
        parse_targets("balancer http://x:1/metrics")
    with pytest.raises(ValueError, match="not an http"):
        parse_targets("balancer=file:///etc/passwd")
    with pytest.raises(ValueError, match="status_targets"):
        ApiSettings(status_targets="balancer=ftp://x/metrics", secret_key="k" * 40)
    assert parse_targets(" , ") == []


def test_figures_ignore_other_exporters_and_non_numbers() -> None:
    text = (
        "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 3\n"
        "# TYPE hydra_feeder_orders_pending gauge\nhydra_feeder_orders_pending 4\n"
        "# TYPE hydra_feeder_odd gauge\nhydra_feeder_odd NaN\n"
    )
    assert figures(text, "feeder") == {"orders_pending": 4}
