"""What the watcher tells the scan loop, without inotify: which paths count, and the requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.watch import ScanRequests, Watcher


def test_only_visible_files_inside_the_input_dir_count(tmp_path: Path) -> None:
    metrics = FeederMetrics(CollectorRegistry())
    root = tmp_path / "input"
    watcher = Watcher(
        root,
        root / "quarantine",
        ScanRequests(),
        asyncio.Event(),
        metrics.watching,
        metrics.watch_restarts,
    )
    assert watcher.relative(root / "Run1" / "P.png") == "Run1/P.png"
    assert watcher.relative(root / "Run1" / ".P.png.tmp") is None
    assert watcher.relative(root / ".cache" / "P.png") is None
    assert watcher.relative(root / "quarantine" / "empty" / "P.png") is None
    assert watcher.relative(tmp_path / "elsewhere" / "P.png") is None


async def test_requests_are_taken_once() -> None:
    requests = ScanRequests()
    requests.touch("Run1/P.png")
    requests.touch("Run1/P.png")
    assert not requests.take_rescan()
    requests.rescan_now()
    await asyncio.wait_for(requests.wait(60.0), 10.0)  # woken: returns at once
    assert requests.take_rescan() and not requests.take_rescan()
    assert requests.take_touched() == {"Run1/P.png"}
    assert requests.take_touched() == set()
