"""The feeder end to end against a real balancer (hydra_balancer) and a real database.

The predictor is a small fake written here on the real gRPC stubs: it takes orders from the
balancer and reports them done (or holds them), which is all the feeder can observe.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from hydra.v1 import balancer_pb2, balancer_pb2_grpc, order_pb2
from PIL import Image
from prometheus_client import CollectorRegistry

from hydra_balancer.service import BalancerService
from hydra_balancer.settings import BalancerSettings
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import FedFile, PlotType
from hydra_feeder.service import FeederService
from hydra_feeder.settings import FeederSettings
from hydra_testsupport import eventually_async as eventually


def png(color: tuple[int, int, int] = (10, 200, 10), size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (1, 2, 3)).save(buf, "JPEG")
    return buf.getvalue()


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def add_plot_types(url: str, names: list[str], ignored: tuple[str, ...] = ()) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            session.add_all(PlotType(name=n, file_type="png", ignored=n in ignored) for n in names)
            await session.commit()
    finally:
        await engine.dispose()


async def ledger_rows(url: str) -> dict[str, tuple[str, str]]:
    """source_path -> (order_id, state)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            t = FedFile.__table__
            rows = await conn.execute(sa.select(t.c.source_path, t.c.order_id, t.c.state))
            return {p: (o, s) for p, o, s in rows}
    finally:
        await engine.dispose()


async def ledger_when(
    url: str, cond: Callable[[dict[str, tuple[str, str]]], bool], within: float = 20.0
) -> dict[str, tuple[str, str]]:
    """The ledger once cond(rows) holds: done notices are written a moment after the ack."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        rows = await ledger_rows(url)
        if cond(rows):
            return rows
        if loop.time() > deadline:
            raise AssertionError(f"ledger never settled: {rows}")
        await asyncio.sleep(0.05)


class Predictor:
    """Takes orders from the balancer; reports each done at once unless holding."""

    def __init__(self, port: int, hold: bool = False, credits: int = 100) -> None:
        self.hold = hold
        self.received: list[order_pb2.InferenceOrder] = []
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.outbox: asyncio.Queue[balancer_pb2.WorkRequest] = asyncio.Queue()
        self.outbox.put_nowait(balancer_pb2.WorkRequest(predictor_id="fake", credits=credits))
        self.call = balancer_pb2_grpc.BalancerServiceStub(self.channel).Work(self._requests())
        self.reader = asyncio.create_task(self._read())

    async def _requests(self) -> AsyncIterator[balancer_pb2.WorkRequest]:
        while True:
            yield await self.outbox.get()

    async def _read(self) -> None:
        async for response in self.call:
            self.received.extend(response.orders)
            if not self.hold:
                self.done([o.order_id for o in response.orders])

    def done(self, ids: list[str]) -> None:
        self.outbox.put_nowait(balancer_pb2.WorkRequest(done=ids, credits=len(ids)))

    @property
    def paths(self) -> list[str]:
        return [o.source_path for o in self.received]

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
            await self.reader
        await self.channel.close()


async def start_balancer(port: int = 0) -> BalancerService:
    settings = BalancerSettings(
        balancer_host="127.0.0.1", balancer_port=port, queue_size=1000, grace_seconds=0.2
    )
    svc = BalancerService(settings, CollectorRegistry())
    await svc.start()
    return svc


def feeder_settings(
    tmp_path: Path, db_url: str, balancer_port: int, **extra: object
) -> FeederSettings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "input_dir": tmp_path / "input",
        "quarantine_dir": tmp_path / "quarantine",
        "database_url": db_url,
        "balancer_address": f"127.0.0.1:{balancer_port}",
        "rescan_seconds": 0.3,
        "stable_seconds": 0.1,
        "feeder_refresh_seconds": 0.3,
        "max_pixels": 100_000,
        "feeder_id": "test-feeder",
    }
    values.update(extra)
    return FeederSettings(**values)  # type: ignore[arg-type]


async def start_feeder(settings: FeederSettings) -> FeederService:
    feeder = FeederService(settings, CollectorRegistry())
    await feeder.start()
    return feeder


def sample(feeder: FeederService, name: str, **labels: str) -> float:
    value = feeder.registry.get_sample_value(name, labels)
    return float(value or 0)


async def test_good_files_fed_and_bad_ones_quarantined(tmp_path: Path, sqlite_url: str) -> None:
    await add_plot_types(
        sqlite_url, ["RF_TOF_selftiming", "CDC_occupancy", "HEL_board"], ("HEL_board",)
    )
    root = tmp_path / "input"
    good = {
        "RunPeriod-2021-08/Run80464/RF_TOF_selftiming-02_0037.png": png((1, 1, 1)),
        "RunPeriod-2021-08/Run80464/CDC_occupancy.png": png((2, 2, 2)),
        "RunPeriod-2021-08/Run80465/CDC_occupancy.png": png((3, 3, 3)),
    }
    bad = {
        "Run80464/CDC_occupancy-01_0001.png": b"",  # empty
        "Run80464/CDC_occupancy-02_0001.png": png(size=(300, 300))[:200],  # truncated
        "Run80464/CDC_occupancy-03_0001.png": b"not an image at all" * 20,
        "Run80464/CDC_occupancy-04_0001.png": jpeg(),  # a JPEG named .png
        "Run80464/CDC_occupancy-05_0001.png": png(size=(400, 400)),  # over max_pixels
        "Run80464/CDC_occupancy.jpg": jpeg(),  # the plot type's file type is png
        "Run80464/README": b"notes",  # no extension: bad name
    }
    skipped = {
        "Run80464/Unknown_plot.png": png(),
        "Run80464/HEL_board.png": png(),
    }
    for rel, data in {**good, **bad, **skipped}.items():
        write(root, rel, data)
    write(root, "Run80464/.hidden_temp.png", b"")  # a writer's temporary file: never touched
    os.mkdir(root / "Run80464" / "looks_like.png")  # a directory named like an image
    (root / "Run80464" / "escape.png").symlink_to(write(tmp_path, "outside/secret.png", png()))

    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    feeder = await start_feeder(feeder_settings(tmp_path, sqlite_url, balancer.port))
    try:
        await eventually(lambda: len(predictor.received) == len(good) and not feeder.pending)
        await eventually(
            lambda: sample(feeder, "hydra_feeder_files_total", outcome="quarantined") == 8
        )
        by_path = {o.source_path: o for o in predictor.received}
        assert set(by_path) == set(good)
        first = by_path["RunPeriod-2021-08/Run80464/RF_TOF_selftiming-02_0037.png"]
        assert (first.plot_type, first.run_number, first.chunk, first.run_period) == (
            "RF_TOF_selftiming",
            80464,
            37,
            "RunPeriod-2021-08",
        )
        assert first.image == good[first.source_path]
        assert first.file_size == len(first.image)
        assert first.stages.file_ns > 0 and first.stages.fed_ns > 0
        assert by_path["RunPeriod-2021-08/Run80465/CDC_occupancy.png"].chunk == -1

        quarantine = tmp_path / "quarantine"
        expected = {
            "empty": "Run80464/CDC_occupancy-01_0001.png",
            "truncated": "Run80464/CDC_occupancy-02_0001.png",
            "not_an_image": "Run80464/CDC_occupancy-03_0001.png",
            "wrong_format": "Run80464/CDC_occupancy-04_0001.png",
            "decompression_bomb": "Run80464/CDC_occupancy-05_0001.png",
            "outside_input_dir": "Run80464/escape.png",
        }
        for reason, rel in expected.items():
            assert (quarantine / reason / rel).exists() or (quarantine / reason / rel).is_symlink()
            note = (quarantine / reason / (rel + ".reason.txt")).read_text()
            assert f"reason: {reason}" in note
            assert not (root / rel).exists()
            assert sample(feeder, "hydra_feeder_rejected_total", reason=reason) == 1
        assert sample(feeder, "hydra_feeder_rejected_total", reason="bad_name") == 2
        assert (quarantine / "bad_name" / "Run80464/README").exists()
        # Skipped files stay where they are, counted once however many rescans pass.
        await asyncio.sleep(1.0)
        for rel in skipped:
            assert (root / rel).exists()
        assert sample(feeder, "hydra_feeder_rejected_total", reason="unknown_plot_type") == 1
        assert sample(feeder, "hydra_feeder_rejected_total", reason="ignored_plot_type") == 1
        assert sample(feeder, "hydra_feeder_files_total", outcome="skipped") == 2
        assert (root / "Run80464/.hidden_temp.png").exists()
        # Fed files stay in place, done in the ledger.
        rows = await ledger_when(
            sqlite_url, lambda r: {state for _, state in r.values()} == {"done"}
        )
        assert set(rows) == set(good)
        assert all((root / rel).exists() for rel in good)
        assert len(predictor.received) == len(good)
    finally:
        await feeder.stop()
        await predictor.close()
        await balancer.stop()


async def restart_scenario(tmp_path: Path, url: str) -> None:
    """Every file fed exactly once across a feeder restart; a rewritten file fed again."""
    await add_plot_types(url, ["RF_adc"])
    root = tmp_path / "input"
    for i in range(5):
        write(root, f"Run{100 + i}/RF_adc.png", png((i, 0, 0)))
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    settings = feeder_settings(tmp_path, url, balancer.port)
    feeder = await start_feeder(settings)
    try:
        await eventually(lambda: len(predictor.received) == 5 and not feeder.pending)
        await feeder.stop()
        for i in range(5, 8):
            write(root, f"Run{100 + i}/RF_adc.png", png((i, 0, 0)))
        feeder = await start_feeder(settings)
        await eventually(lambda: len(predictor.received) == 8 and not feeder.pending)
        await asyncio.sleep(1.0)  # several rescans: nothing more may come
        assert sorted(predictor.paths) == sorted(f"Run{100 + i}/RF_adc.png" for i in range(8))
        rows = await ledger_when(url, lambda r: {s for _, s in r.values()} == {"done"})
        assert len(rows) == 8
        # A rewritten file is a new plot: fed once more, with a new order id.
        old_id = rows["Run100/RF_adc.png"][0]
        path = write(root, "Run100/RF_adc.png", png((99, 99, 99), (40, 30)))
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
        await eventually(lambda: len(predictor.received) == 9 and not feeder.pending)
        assert predictor.received[-1].source_path == "Run100/RF_adc.png"
        assert predictor.received[-1].order_id != old_id
        await eventually(lambda: sample(feeder, "hydra_feeder_orders_done_total") == 4)
    finally:
        await feeder.stop()
        await predictor.close()
        await balancer.stop()


async def test_feeder_restart_neither_repeats_nor_loses(tmp_path: Path, sqlite_url: str) -> None:
    await restart_scenario(tmp_path, sqlite_url)


@pytest.mark.mysql
async def test_feeder_restart_on_mysql(tmp_path: Path, fresh_mysql_url: str) -> None:
    await restart_scenario(tmp_path, fresh_mysql_url)


async def test_pending_orders_resent_after_balancer_restart(
    tmp_path: Path, sqlite_url: str
) -> None:
    await add_plot_types(sqlite_url, ["RF_adc"])
    root = tmp_path / "input"
    for i in range(4):
        write(root, f"Run{i + 1}/RF_adc.png", png((i, 1, 1)))
    balancer = await start_balancer()
    port = balancer.port
    holder = Predictor(port, hold=True)  # takes orders, never finishes them
    feeder = await start_feeder(feeder_settings(tmp_path, sqlite_url, port))
    predictor: Predictor | None = None
    try:
        await eventually(lambda: len(holder.received) == 4)
        sent_ids = {o.order_id for o in holder.received}
        rows = await ledger_rows(sqlite_url)
        assert {s for _, s in rows.values()} == {"pending"}
        await holder.close()
        await balancer.stop()  # the balancer's queue is gone with it
        balancer = await start_balancer(port)
        predictor = Predictor(port)
        await eventually(lambda: len(predictor.received) == 4 and not feeder.pending)
        assert {o.order_id for o in predictor.received} == sent_ids  # same orders, re-sent
        assert all(len(o.image) > 0 for o in predictor.received)  # bytes re-read from disk
        await eventually(lambda: feeder.connections >= 2)
        rows = await ledger_when(sqlite_url, lambda r: {s for _, s in r.values()} == {"done"})
        assert len(rows) == 4
    finally:
        await feeder.stop()
        if predictor is not None:
            await predictor.close()
        await balancer.stop()


async def test_window_bounds_pending_and_vanished_files_end(
    tmp_path: Path, sqlite_url: str
) -> None:
    await add_plot_types(sqlite_url, ["RF_adc"])
    root = tmp_path / "input"
    for i in range(5):
        write(root, f"Run{i + 1}/RF_adc.png", png((i, 2, 2)))
    balancer = await start_balancer()
    holder = Predictor(balancer.port, hold=True)
    feeder = await start_feeder(
        feeder_settings(tmp_path, sqlite_url, balancer.port, feeder_window=2)
    )
    try:
        await eventually(lambda: len(holder.received) == 2)
        await asyncio.sleep(1.0)
        assert len(holder.received) == 2
        assert len(feeder.pending) == 2
        holder.done([o.order_id for o in holder.received])
        await eventually(lambda: len(holder.received) == 4)
        holder.done([o.order_id for o in holder.received[2:]])
        await eventually(lambda: len(holder.received) == 5)
        assert len({o.source_path for o in holder.received}) == 5
        # The last order is pending; its file vanishes and the balancer restarts: the
        # re-send finds no file and ends the order instead of sending nothing forever.
        last = holder.received[-1]
        (root / last.source_path).unlink()
        await holder.close()
        port = balancer.port
        await balancer.stop()
        balancer = await start_balancer(port)
        await eventually(lambda: not feeder.pending)
        await eventually(
            lambda: sample(feeder, "hydra_feeder_rejected_total", reason="vanished") == 1
        )
        rows = await ledger_when(sqlite_url, lambda r: r[last.source_path][1] == "done")
        assert rows[last.source_path] == (last.order_id, "done")
    finally:
        await feeder.stop()
        await balancer.stop()


async def test_skipped_file_fed_once_its_plot_type_appears(tmp_path: Path, sqlite_url: str) -> None:
    root = tmp_path / "input"
    write(root, "Run7/BST_hits2d.png", png())
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    feeder = await start_feeder(feeder_settings(tmp_path, sqlite_url, balancer.port))
    try:
        await eventually(lambda: sample(feeder, "hydra_feeder_files_total", outcome="skipped") == 1)
        assert predictor.received == []
        await add_plot_types(sqlite_url, ["BST_hits2d"])
        await eventually(lambda: len(predictor.received) == 1)
        assert predictor.received[0].plot_type == "BST_hits2d"
        assert predictor.received[0].run_number == 7
    finally:
        await feeder.stop()
        await predictor.close()
        await balancer.stop()


async def test_a_file_older_than_the_ledger_remembers_is_left_alone(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Retention prunes the ledger's done rows after HYDRA_RETENTION_LEDGER_DAYS: a file left
    in the input folder longer than that must not be fed a second time."""
    await add_plot_types(sqlite_url, ["DC_occupancy"])
    root = tmp_path / "input"
    old = write(root, "Run7/DC_occupancy-1.png", png())
    month_ago = old.stat().st_mtime - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    write(root, "Run7/DC_occupancy-2.png", png())
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    settings = feeder_settings(tmp_path, sqlite_url, balancer.port, max_file_age_days=14)
    feeder = await start_feeder(settings)
    try:
        await eventually(
            lambda: sample(feeder, "hydra_feeder_rejected_total", reason="too_old") == 1
        )
        await eventually(lambda: len(predictor.received) == 1)
        assert predictor.paths == ["Run7/DC_occupancy-2.png"]
        assert old.exists()  # left in place, not quarantined
        assert "Run7/DC_occupancy-1.png" not in await ledger_rows(sqlite_url)
    finally:
        await feeder.stop()
        await predictor.close()
        await balancer.stop()


async def test_database_outage_delays_files_and_loses_none(tmp_path: Path, sqlite_url: str) -> None:
    await add_plot_types(sqlite_url, ["RF_adc"])
    root = tmp_path / "input"
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    feeder = await start_feeder(feeder_settings(tmp_path, sqlite_url, balancer.port))
    engine = make_engine(sqlite_url)
    try:
        # The ledger's table goes away (a database outage as the feeder sees it)...
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE fed_files RENAME TO fed_files_away"))
        write(root, "Run5/RF_adc.png", png())
        await asyncio.sleep(1.5)
        assert predictor.received == []  # nothing is sent that the ledger does not hold
        async with engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE fed_files_away RENAME TO fed_files"))
        # ...and comes back: the file is fed, once.
        await eventually(lambda: len(predictor.received) == 1 and not feeder.pending)
        await asyncio.sleep(0.5)
        assert predictor.paths == ["Run5/RF_adc.png"]
        assert (root / "Run5/RF_adc.png").exists()
    finally:
        await engine.dispose()
        await feeder.stop()
        await predictor.close()
        await balancer.stop()


async def test_a_name_that_is_not_utf8_never_makes_the_feeder_deaf(
    tmp_path: Path, sqlite_url: str
) -> None:
    """``watchfiles`` gives up on a path it cannot decode; the feeder starts it again, rescans
    at once (the bad file is quarantined as ``bad_name``), and later files arrive through
    inotify again. Rescans are an hour apart here, so only a live watcher feeds them."""
    await add_plot_types(sqlite_url, ["CDC_occupancy"])
    root = tmp_path / "input"
    for run in (6, 7, 8, 9):  # watched from the start: a file in a brand-new folder can
        (root / f"Run{run}").mkdir(parents=True)  # beat inotify's watch on that folder
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    feeder = await start_feeder(
        feeder_settings(tmp_path, sqlite_url, balancer.port, rescan_seconds=3600)
    )
    try:
        await eventually(lambda: sample(feeder, "hydra_feeder_watching") == 1)
        # A first file fed proves inotify is live (the watcher starts in its own thread).
        write(root, "Run6/CDC_occupancy.png", png((6, 6, 6)))
        await eventually(lambda: len(predictor.received) == 1)
        name = b"CDC_occupancy\xff\xfe.png".decode("utf-8", "surrogateescape")
        bad = write(root, f"Run7/{name}", png())
        await eventually(lambda: sample(feeder, "hydra_feeder_watch_restarts_total") >= 1)
        await eventually(
            lambda: sample(feeder, "hydra_feeder_rejected_total", reason="bad_name") == 1
        )
        assert not bad.exists()
        await eventually(lambda: sample(feeder, "hydra_feeder_watching") == 1)
        for run in (8, 9):
            write(root, f"Run{run}/CDC_occupancy.png", png((run, run, run)))
        await eventually(lambda: len(predictor.received) == 3)
        assert {o.run_number for o in predictor.received} == {6, 8, 9}
    finally:
        await feeder.stop()
        await predictor.close()
        await balancer.stop()
    assert sample(feeder, "hydra_feeder_watching") == 0


async def test_a_writer_that_paused_gets_its_plot_back_and_fed(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The writer stops half-way for longer than the stability window: the file is
    quarantined as truncated. The writer's open file follows the file into the quarantine
    and finishes it there; the feeder notices, moves it back and feeds it, once."""
    await add_plot_types(sqlite_url, ["CDC_occupancy"])
    root = tmp_path / "input"
    data = png((9, 9, 9), size=(120, 90))
    rel = "Run11/CDC_occupancy.png"
    path = root / rel
    path.parent.mkdir(parents=True)
    writer = path.open("wb")
    writer.write(data[:150])
    writer.flush()
    balancer = await start_balancer()
    predictor = Predictor(balancer.port)
    feeder = await start_feeder(feeder_settings(tmp_path, sqlite_url, balancer.port))
    try:
        await eventually(
            lambda: sample(feeder, "hydra_feeder_rejected_total", reason="truncated") == 1
        )
        assert (tmp_path / "quarantine" / "truncated" / rel).exists() and not path.exists()
        writer.write(data[150:])  # the writer wakes up and finishes: inside the quarantine
        writer.close()
        await eventually(lambda: len(predictor.received) == 1)
        (order,) = predictor.received
        assert order.source_path == rel and order.image == data
        assert sample(feeder, "hydra_feeder_requeued_total") == 1
        assert path.exists() and not (tmp_path / "quarantine" / "truncated" / rel).exists()
        assert not list((tmp_path / "quarantine" / "truncated").rglob("*.reason.txt"))
        rows = await ledger_when(sqlite_url, lambda r: r.get(rel, ("", ""))[1] == "done")
        assert list(rows) == [rel]
    finally:
        if not writer.closed:
            writer.close()
        await feeder.stop()
        await predictor.close()
        await balancer.stop()
