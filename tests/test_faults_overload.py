"""Overload: a burst of plots far faster than the predictor goes; every bound holds.

One predictor with few credits and small batches, a small balancer queue and a small feeder
window, and 600 large plots (about 1.2 MB each) landing at once. While they drain:

- the balancer's queue (``hydra_balancer_queue_depth``) fills up to ``HYDRA_QUEUE_SIZE`` and
  no further, and the predictor never holds more than its credits;
- the feeder waits: its pending orders (``hydra_feeder_orders_pending``) reach
  ``HYDRA_FEEDER_WINDOW`` and no further;
- no service's resident memory grows by more than what those bounds let it hold (an
  unbounded queue anywhere would hold the whole burst, about 700 MB);
- nothing crashes (the launcher restarts nothing), and in the end every plot has exactly one
  ``run_history`` row.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from hydra_common.launcher import LocalStack
from hydra_testsupport.harness import (
    MODEL_TYPES,
    RUN_PERIOD,
    Db,
    Supervisor,
    prepare_hall,
    scrape,
    stack_env,
    start_stack,
)
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

QUEUE_SIZE = 50
WINDOW = 80
CREDITS = 4
MAX_BATCH = 2
BURST = 600
WARM_UP = 4
SIDE = 640  # random pixels: a PNG of about 1.2 MB that does not compress
PLOT_TYPE = MODEL_TYPES[0]
MB = 1024 * 1024


@dataclass
class Peaks:
    """The largest values seen while the burst drained."""

    rss: dict[str, int] = field(default_factory=dict)
    queue_depth: float = 0.0
    feeder_pending: float = 0.0
    inflight: float = 0.0
    samples: int = 0


def _rel(i: int) -> str:
    return f"RunPeriod-{RUN_PERIOD}/Run{7000 + i // 100}/{PLOT_TYPE}_{i % 100:04d}.png"


def _rss(stack: LocalStack) -> dict[str, int]:
    out = {}
    for service, proc in stack.procs.items():
        try:
            out[service] = psutil.Process(proc.pid).memory_info().rss
        except psutil.NoSuchProcess:
            out[service] = 0
    return out


def _rows(db: Db) -> int:
    return int(db.scalar("SELECT COUNT(*) FROM run_history"))


@pytest.fixture(scope="module")
def workdir() -> Iterator[tuple[str, Path]]:
    url = create_mysql_database("hydra_overload")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-overload-"))
    yield url, data_dir
    drop_mysql_database(url)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(600)
def test_a_burst_is_held_at_every_bound_and_fully_processed(workdir: tuple[str, Path]) -> None:
    url, data_dir = workdir
    input_dir, staging = data_dir / "input", data_dir / "staging"
    input_dir.mkdir()
    prepare_hall(url, data_dir / "models", (PLOT_TYPE,), (), collect_percent=0.0)

    # One noise image under BURST names, staged on the same file system: os.replace then
    # lands the whole burst within a fraction of a second.
    pixels = np.random.default_rng(3).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    first = staging / _rel(0)
    first.parent.mkdir(parents=True)
    Image.fromarray(pixels).save(first, format="PNG")
    size = first.stat().st_size
    for i in range(1, BURST):
        (staging / _rel(i)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, staging / _rel(i))

    env, ports = stack_env(
        url,
        data_dir,
        input_dir,
        HYDRA_QUEUE_SIZE=str(QUEUE_SIZE),
        HYDRA_FEEDER_WINDOW=str(WINDOW),
        HYDRA_FEEDER_BATCH="16",
        HYDRA_CREDITS=str(CREDITS),
        HYDRA_MAX_BATCH=str(MAX_BATCH),
        HYDRA_MAX_WAIT_MS="5",
    )
    stack = start_stack(env, ports, data_dir / "logs")
    db = Db(url)
    try:
        with Supervisor(stack):
            # Warm up (models loaded, streams open), then take the idle footprint.
            for i in range(WARM_UP):
                _land(staging, input_dir, i)
            _wait_for(lambda: _rows(db) >= WARM_UP, 240, "the warm-up plots")
            time.sleep(2.0)
            idle = _rss(stack)

            started = time.monotonic()
            for i in range(WARM_UP, BURST):
                _land(staging, input_dir, i)
            landed = time.monotonic() - started
            peaks = _drain(stack, db, ports.metrics)
            drained = time.monotonic() - started
            time.sleep(3.0)  # a duplicate row would show up now

        restarts = dict(stack.restarts)
        alive = {s: p.poll() is None for s, p in stack.procs.items()}
        rows = db.rows("SELECT source_path, order_id FROM run_history")
    finally:
        stack.stop(15)
        db.close()

    summary = (
        f"burst of {BURST} x {size / MB:.2f} MB landed in {landed:.2f}s, processed in "
        f"{drained:.1f}s; peaks: queue {peaks.queue_depth:.0f}, feeder pending "
        f"{peaks.feeder_pending:.0f}, in flight {peaks.inflight:.0f}; RSS MB idle/peak "
        + ", ".join(f"{s} {idle[s] / MB:.0f}/{peaks.rss.get(s, 0) / MB:.0f}" for s in idle)
    )
    print(summary)
    assert peaks.samples >= 5, summary

    # Nothing crashed, and everything was processed exactly once.
    assert restarts == dict.fromkeys(stack.services, 0), summary
    assert all(alive.values()), alive
    paths = [r[0] for r in rows]
    assert len(rows) == BURST, summary
    assert set(paths) == {_rel(i) for i in range(BURST)}
    assert len({r[1] for r in rows}) == BURST

    # The balancer's queue filled to its bound and stopped there; the predictor took only
    # what its credits allow.
    assert QUEUE_SIZE // 2 <= peaks.queue_depth <= QUEUE_SIZE, summary
    assert peaks.inflight <= CREDITS, summary
    # The feeder waited: it had more to send than the queue took, and stopped at its window.
    assert QUEUE_SIZE <= peaks.feeder_pending <= WINDOW, summary

    # Memory: each service may hold what its bounds allow (counted twice: a message and its
    # bytes), plus 200 MB for allocator slack; the whole burst would be ~700 MB more.
    held = {
        "feeder": WINDOW,
        "balancer": WINDOW + QUEUE_SIZE,
        "predictor": CREDITS,
        "keeper": CREDITS,
        "modelserver": CREDITS,
        "api": 0,
    }
    assert BURST * size > 2 * (WINDOW + QUEUE_SIZE) * size + 200 * MB  # the check can fail
    for service, images in held.items():
        bound = idle[service] + 2 * images * size + 200 * MB
        assert peaks.rss[service] <= bound, f"{service}: {summary}"


def _land(staging: Path, input_dir: Path, i: int) -> None:
    target = input_dir / _rel(i)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging / _rel(i), target)


def _wait_for(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _drain(stack: LocalStack, db: Db, metrics_ports: dict[str, int]) -> Peaks:
    """Sample memory and queue figures until every plot of the burst has its row."""
    peaks = Peaks()
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        for service, rss in _rss(stack).items():
            peaks.rss[service] = max(peaks.rss.get(service, 0), rss)
        depth = scrape(metrics_ports["balancer"], "hydra_balancer_queue_depth")
        inflight = scrape(metrics_ports["balancer"], "hydra_balancer_inflight_orders")
        pending = scrape(metrics_ports["feeder"], "hydra_feeder_orders_pending")
        peaks.queue_depth = max(peaks.queue_depth, depth or 0.0)
        peaks.inflight = max(peaks.inflight, inflight or 0.0)
        peaks.feeder_pending = max(peaks.feeder_pending, pending or 0.0)
        peaks.samples += 1
        if _rows(db) >= BURST:
            return peaks
        time.sleep(0.3)
    raise TimeoutError(f"the burst did not drain: {_rows(db)} of {BURST} rows")
