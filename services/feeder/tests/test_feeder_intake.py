"""The intake alone, on a real ledger and input folder, with no balancer: files become
pending orders, skipped files wait for their plot type, bad ones go to the quarantine."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path

import sqlalchemy as sa
from PIL import Image
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import FedFile
from hydra_feeder.intake import Intake
from hydra_feeder.ledger import Ledger, PlotTypeInfo
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import make_parser, parse_hydra
from hydra_feeder.orders import PendingOrders
from hydra_feeder.scanner import FileStat
from hydra_feeder.settings import FeederSettings
from hydra_feeder.watch import ScanRequests
from hydra_testsupport import eventually_async as eventually


def png(size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


async def ledger_rows(ledger: Ledger) -> dict[str, str]:
    """Every ledger row's order id, by path."""
    t = FedFile.__table__
    async with ledger.engine.connect() as conn:
        return dict((await conn.execute(sa.select(t.c.source_path, t.c.order_id))).all())


def make_intake(
    tmp_path: Path,
    url: str,
    ledger: Ledger,
    metrics: FeederMetrics,
    full_rescan_seconds: float = 60.0,
) -> tuple[Intake, PendingOrders]:
    settings = FeederSettings(
        database_url=url,
        data_dir=tmp_path,
        stable_seconds=0,
        rescan_seconds=0.05,
        full_rescan_seconds=full_rescan_seconds,
    )
    pending = PendingOrders(settings.feeder_window)
    parse = make_parser(settings.file_pattern)
    return Intake(settings, parse, ledger, pending, ScanRequests(), metrics), pending


async def test_files_become_pending_orders(tmp_path: Path, sqlite_url: str) -> None:
    root = tmp_path / "input"
    (root / "Run7").mkdir(parents=True)
    (root / "Run7" / "CDC_occupancy.png").write_bytes(png())
    (root / "Run7" / "BST_hits2d.png").write_bytes(png())
    (root / "Run7" / "CDC_occupancy_0002.png").write_bytes(b"not an image")
    ledger = Ledger(make_engine(sqlite_url))
    intake, pending = make_intake(tmp_path, sqlite_url, ledger, FeederMetrics(CollectorRegistry()))
    intake.use_plot_types({"CDC_occupancy": PlotTypeInfo("png", False)})
    task = asyncio.create_task(intake.run())
    try:
        quarantined = tmp_path / "quarantine" / "not_an_image" / "Run7/CDC_occupancy_0002.png"
        await eventually(lambda: len(pending) == 1 and "Run7/BST_hits2d.png" in intake.handled)
        await eventually(quarantined.exists)
        (first,) = pending.orders.values()
        assert first.entry.source_path == "Run7/CDC_occupancy.png"
        assert first.order is not None and first.order.image == png()
        assert pending.take_unsent(10) == [first.entry.order_id]
        assert intake.handled["Run7/BST_hits2d.png"].outcome == "unknown_plot_type"
        # The plot type appears: the skipped file is judged again and fed.
        intake.use_plot_types(
            {name: PlotTypeInfo("png", False) for name in ("CDC_occupancy", "BST_hits2d")}
        )
        await eventually(lambda: len(pending) == 2)
        t = FedFile.__table__
        async with ledger.engine.connect() as conn:
            rows = dict((await conn.execute(sa.select(t.c.source_path, t.c.state))).all())
        assert rows == {"Run7/CDC_occupancy.png": "pending", "Run7/BST_hits2d.png": "pending"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()


async def test_file_vanished_before_read_is_counted(tmp_path: Path, sqlite_url: str) -> None:
    ledger = Ledger(make_engine(sqlite_url))
    metrics = FeederMetrics(CollectorRegistry())
    intake, _ = make_intake(tmp_path, sqlite_url, ledger, metrics)
    parsed = parse_hydra("Run1/P.png")
    assert parsed is not None
    assert await intake.read_one("Run1/P.png", FileStat(10, 1), parsed) is None
    assert metrics.rejected.labels("vanished")._value.get() == 1
    await ledger.engine.dispose()


async def test_a_file_the_quarantine_could_not_take_is_moved_once_it_can(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The quarantine cannot take a bad file (here its folder is a plain file, as a full
    volume refuses with ENOSPC): the file stays, counted once; when the quarantine works
    again the next rescan moves it, with no feeder restart and no second count."""
    root = tmp_path / "input"
    (root / "Run7").mkdir(parents=True)
    bad = root / "Run7" / "CDC_occupancy.png"
    bad.write_bytes(b"not an image")
    blocker = tmp_path / "quarantine"
    blocker.write_text("in the way")  # mkdir of the reason folder fails: NotADirectoryError
    ledger = Ledger(make_engine(sqlite_url))
    metrics = FeederMetrics(CollectorRegistry())
    intake, _ = make_intake(tmp_path, sqlite_url, ledger, metrics)
    intake.use_plot_types({"CDC_occupancy": PlotTypeInfo("png", False)})
    rejected = metrics.rejected.labels("not_an_image")
    task = asyncio.create_task(intake.run())
    try:
        await eventually(lambda: "Run7/CDC_occupancy.png" in intake.unmoved)
        assert bad.exists() and rejected._value.get() == 1
        await asyncio.sleep(0.3)  # several rescans while it still fails: still one count
        assert bad.exists() and rejected._value.get() == 1
        blocker.unlink()
        moved = blocker / "not_an_image" / "Run7" / "CDC_occupancy.png"
        await eventually(moved.exists)
        assert not bad.exists() and intake.unmoved == {}
        assert rejected._value.get() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()


async def test_a_file_that_left_and_came_back_is_not_fed_again(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A file younger than the feeder is taken for new: its row is inserted without a look
    first. One fed before that left the folder and came back as it was finds its path taken:
    it is not fed again, and no failed ledger write is counted."""
    root = tmp_path / "input"
    (root / "Run7").mkdir(parents=True)
    plot = root / "Run7" / "CDC_occupancy.png"
    plot.write_bytes(png())
    ledger = Ledger(make_engine(sqlite_url))
    metrics = FeederMetrics(CollectorRegistry())
    intake, pending = make_intake(tmp_path, sqlite_url, ledger, metrics)
    intake.use_plot_types({"CDC_occupancy": PlotTypeInfo("png", False)})
    task = asyncio.create_task(intake.run())
    rel = "Run7/CDC_occupancy.png"
    try:
        await eventually(lambda: len(pending) == 1)
        (order_id,) = pending.orders
        away = tmp_path / "away.png"
        os.rename(plot, away)
        await eventually(lambda: rel not in intake.handled)  # a quick rescan saw it go
        os.rename(away, plot)  # back, its size and mtime as they were
        await eventually(lambda: rel in intake.handled)
        assert intake.handled[rel].outcome == "fed"
        assert list(pending.orders) == [order_id]
        assert await ledger_rows(ledger) == {rel: order_id}
        assert metrics.ledger_write_errors._value.get() == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()


async def test_a_file_rewritten_in_place_is_found_by_the_full_walk(
    tmp_path: Path, sqlite_url: str
) -> None:
    """No inotify here, as on NFS. A fed file rewritten in place leaves its directory's mtime
    as it was, so the quick rescans reuse the directory's listing; the full walk stats it,
    and the new version is fed as a new order on the same ledger row."""
    root = tmp_path / "input"
    run = root / "Run7"
    run.mkdir(parents=True)
    plot = run / "CDC_occupancy.png"
    plot.write_bytes(png())
    then = time.time() - 60
    os.utime(run, (then, then))  # long unchanged: its listing is trusted
    ledger = Ledger(make_engine(sqlite_url))
    metrics = FeederMetrics(CollectorRegistry())
    intake, pending = make_intake(tmp_path, sqlite_url, ledger, metrics, full_rescan_seconds=0.5)
    intake.use_plot_types({"CDC_occupancy": PlotTypeInfo("png", False)})
    task = asyncio.create_task(intake.run())
    try:
        await eventually(lambda: len(pending) == 1)
        plot.write_bytes(png((32, 24)))
        assert os.stat(run).st_mtime < then + 1  # in place: the directory's mtime stayed
        await eventually(lambda: len(pending) == 2)
        newest = list(pending.orders.values())[-1]
        assert newest.entry.file_size == len(png((32, 24)))
        assert await ledger_rows(ledger) == {"Run7/CDC_occupancy.png": newest.entry.order_id}
        assert metrics.ledger_write_errors._value.get() == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()
