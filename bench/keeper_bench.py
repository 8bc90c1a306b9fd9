"""Keeper write throughput on MariaDB in production shape: group commit vs one commit per report.

Reports as the pipeline delivers them: every one carries its image (real simulated ePIC
PNGs, 4 KiB mean), for the 568 ePIC plot types, with a hall's mix: 90 % confirmed Good, 5 %
unconfirmed and 5 % confirmed Bad (with its Grad-CAM heat map, 24 x 32 as the small CNN's),
so 10 % of the images are kept for labelling (fsynced files and ``plots`` rows) and every
plot type's newest image goes to the Run page's live files. The keeper's ``BatchWriter``
takes them in commits of ``PIPELINE_COMMIT`` reports, the mean commit the pipeline's keeper
makes (``small_mean_commit`` in ``pipeline_bench``); the naive writer does what a
straightforward ORM keeper does, one transaction per report (look up the order id, write the
kept image, insert run_history, plots and monitoring_log rows, upsert run_time, commit). A
third figure sends the reports through a real keeper over gRPC (4 streams, 64 reports a
message, as predictors send them → queue → group commit → acks).

What a commit costs, besides: the SQL statements the ``BatchWriter`` sends per commit of
``PIPELINE_COMMIT`` reports and per commit of one report (a trickle: a hall at 1 image/s
commits each report alone), counted on its engine, and the CPU time of this process per
report in each case (the plot types' states already known, as in a running keeper).

MariaDB commits durably (``innodb_flush_log_at_trx_commit`` is recorded with the figures).
Each round uses a fresh database; figures are medians of ``REPEATS`` rounds with spreads, and
``keeper_vs_naive`` is taken within each round.

    python -m bench.keeper_bench [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hydra.v1 import order_pb2, report_pb2
from prometheus_client import CollectorRegistry
from sqlalchemy import event

from bench.results import median_spread, record
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.migrate import upgrade
from hydra_common.db.schema import (
    Classification,
    KeptReason,
    Model,
    MonitoringLog,
    Plot,
    PlotType,
    RunHistory,
    RunTime,
    Threshold,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_keeper import storage
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.verdicts import judge, stage_seconds
from hydra_keeper.writer import BatchWriter
from hydra_testsupport.seeding import stamped_at

SERVER = os.environ.get("HYDRA_TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306/mysql")
PLOT_TYPES = 568  # ePIC's
PIPELINE_COMMIT = 34  # the pipeline keeper's mean commit (pipeline_bench small_mean_commit)
REPEATS = 3
TRICKLE_REPORTS = 200  # commits of one report in the cost figures
LABELS = ["Good", "Bad", "NoData"]
HEAT_SHAPE = (24, 32)  # the small CNN's Grad-CAM map


async def _admin(sql: str) -> Any:
    engine = make_engine(SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.text(sql))
            return result.all() if result.returns_rows else []
    finally:
        await engine.dispose()


async def durability() -> str:
    """The server's ``innodb_flush_log_at_trx_commit`` (1: every commit reaches the disk)."""
    rows = await _admin("SHOW VARIABLES LIKE 'innodb_flush_log_at_trx_commit'")
    return str(rows[0][1]) if rows else "?"


async def _seed(url: str) -> list[tuple[str, int]]:
    """Plot types with a model and thresholds each (multi-row inserts); (name, model id)."""
    engine = make_engine(url)
    names = [f"epic_plot_{i:03d}" for i in range(PLOT_TYPES)]
    try:
        async with engine.begin() as conn:
            labels = dict(
                (await conn.execute(sa.select(Classification.name, Classification.id))).all()
            )
            now = utcnow()
            await conn.execute(
                sa.insert(PlotType.__table__),
                [{"name": n, "collect_percent": 0.0, "created_at": now} for n in names],
            )
            pids = dict((await conn.execute(sa.select(PlotType.name, PlotType.id))).all())
            await conn.execute(
                sa.insert(Model.__table__),
                [
                    {
                        "plot_type_id": pids[n],
                        "name": n,
                        "version": 1,
                        "architecture": "small",
                        "label_order": LABELS,
                        "created_at": now,
                    }
                    for n in names
                ],
            )
            mids = dict((await conn.execute(sa.select(Model.name, Model.id))).all())
            await conn.execute(
                sa.insert(Threshold.__table__),
                [
                    {
                        "model_id": mids[n],
                        "classification_id": labels[label],
                        "threshold": t,
                        "set_at": now,
                    }
                    for n in names
                    for label, t in (("Good", 0.7), ("Bad", 0.6), ("NoData", 0.8))
                ],
            )
    finally:
        await engine.dispose()
    return [(n, int(mids[n])) for n in names]


def _heat_map(rng: random.Random) -> report_pb2.HeatMap:
    h, w = HEAT_SHAPE
    cy, cx = rng.randrange(h), rng.randrange(w)
    values = [
        max(0.0, 1.0 - ((y - cy) ** 2 + (x - cx) ** 2) / 40.0) for y in range(h) for x in range(w)
    ]
    return report_pb2.HeatMap(height=h, width=w, values=values)


def _reports(
    n: int, plot_types: list[tuple[str, int]], images: list[bytes], seed: int
) -> list[report_pb2.Report]:
    """n reports cycling over the plot types, each with its image; 5 % Bad, 5 % unconfirmed."""
    rng = random.Random(seed)
    out = []
    now = time.time_ns()
    for i in range(n):
        name, mid = plot_types[i % len(plot_types)]
        draw = rng.random()
        heat = None
        if draw < 0.90:
            weights = [0.95, 0.03, 0.02]  # confirmed Good
        elif draw < 0.95:
            weights = [0.55, 0.35, 0.10]  # unconfirmed Good: kept
        else:
            weights = [0.05, 0.92, 0.03]  # confirmed Bad: kept, with its heat map
            heat = _heat_map(rng)
        image = images[i % len(images)]
        order = order_pb2.InferenceOrder(
            order_id=uuid7(),
            plot_type=name,
            run_period="RunPeriod-2026-02",
            run_number=5000 + seed,
            chunk=i // len(plot_types),
            source_path=f"RunPeriod-2026-02/Run{5000 + seed}/{name}_{i // len(plot_types):04d}.png",
            image=image,
            file_size=len(image),
            stages=stamped_at(now),
        )
        out.append(
            report_pb2.Report(
                order=order,
                status=report_pb2.REPORT_STATUS_OK,
                model_id=mid,
                model_name=name,
                model_version=1,
                labels=LABELS,
                weights=weights,
                heat_map=heat,
                predictor_id="bench",
            )
        )
    return out


async def _batched(url: str, reports: list[report_pb2.Report], batch: int) -> float:
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            writer = BatchWriter(engine, Path(tmp), ReferenceCache(3600), 1.0)
            await writer.write(reports[:1])  # warm the caches and the pool
            started = time.perf_counter()
            for i in range(1, len(reports), batch):
                await writer.write(reports[i : i + batch])
            elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return (len(reports) - 1) / elapsed


async def _cost(url: str, reports: list[report_pb2.Report]) -> dict[str, float]:
    """Statements per commit and CPU ms per report: the first ``TRICKLE_REPORTS`` reports one
    a commit, the rest in commits of ``PIPELINE_COMMIT``, after a commit of every plot type."""
    engine = make_engine(url)
    statements = 0

    def counted(*_: Any) -> None:
        nonlocal statements
        statements += 1

    out: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            writer = BatchWriter(engine, Path(tmp), ReferenceCache(3600), 1.0)
            await writer.write(reports[:PLOT_TYPES])  # every plot type's state known
            event.listen(engine.sync_engine, "before_cursor_execute", counted)
            trickle = reports[PLOT_TYPES : PLOT_TYPES + TRICKLE_REPORTS]
            started = time.process_time()
            for r in trickle:
                await writer.write([r])
            out["keeper_cpu_ms_per_report_trickle"] = (
                1000 * (time.process_time() - started) / len(trickle)
            )
            out["keeper_statements_per_commit_trickle"] = statements / len(trickle)
            statements = 0
            rest = reports[PLOT_TYPES + TRICKLE_REPORTS :]
            commits = range(0, len(rest), PIPELINE_COMMIT)
            started = time.process_time()
            for i in commits:
                await writer.write(rest[i : i + PIPELINE_COMMIT])
            out["keeper_cpu_ms_per_report"] = 1000 * (time.process_time() - started) / len(rest)
            out["keeper_statements_per_commit"] = statements / len(commits)
    finally:
        await engine.dispose()
    return out


async def _naive(url: str, reports: list[report_pb2.Report]) -> float:
    """One transaction per report, ORM objects, thresholds read once (as a cache would)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    cache = ReferenceCache(3600)
    try:
        async with engine.begin() as conn:
            await cache.ensure(conn, reports)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            started = time.perf_counter()
            for r in reports:
                await _naive_one(sessions, cache, root, r)
            elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return len(reports) / elapsed


def _naive_write(root: Path, rel: str, data: bytes, durable: bool) -> None:
    """The naive writer's files, as a straightforward keeper writes them (and as the keeper's
    own ``storage.write_atomic`` did when this baseline was set): the directories made, a
    temporary file, fsynced when durable, renamed into place. Its own copy, so that making
    the keeper's files cheaper does not move the baseline."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


async def _naive_one(
    sessions: Any, cache: ReferenceCache, root: Path, r: report_pb2.Report
) -> None:
    async with sessions() as session:
        oid = r.order.order_id
        exists = await session.scalar(sa.select(RunHistory.id).where(RunHistory.order_id == oid))
        if exists is not None:
            return
        pt = cache.plot_types[r.order.plot_type]
        j = judge(r, cache.model_thresholds(r.model_id) or {}, cache.alarm_labels, 0.5)
        now = utcnow()
        plot_id = None
        live = storage.live_image_path(pt.name, oid, "png")
        _naive_write(root, live, r.order.image, durable=False)
        if j.logged:
            rel = storage.kept_image_path(pt.name, oid, "png")
            _naive_write(root, rel, r.order.image, durable=True)
            heat_rel = None
            if r.HasField("heat_map"):
                heat = storage.render_heatmap(r.heat_map, storage.image_size(r.order.image))
                if heat is not None:
                    heat_rel = storage.kept_heatmap_path(pt.name, oid)
                    _naive_write(root, heat_rel, heat, durable=True)
            plot = Plot(
                plot_type_id=pt.id,
                run_period=r.order.run_period,
                run_number=r.order.run_number,
                chunk=r.order.chunk,
                image_path=rel,
                heatmap_path=heat_rel,
                order_id=oid,
                kept_reason=KeptReason.BAD if j.confirmed else KeptReason.UNCONFIRMED,
                source_path=r.order.source_path,
                created_at=now,
            )
            session.add(plot)
            await session.flush()
            plot_id = plot.id
        row = RunHistory(
            order_id=oid,
            plot_type_id=pt.id,
            run_period=r.order.run_period,
            run_number=r.order.run_number,
            chunk=r.order.chunk,
            status=j.status,
            model_id=r.model_id,
            verdict=j.verdict,
            confidence=j.confidence,
            confirmed=j.confirmed,
            weights=j.weights,
            thresholds=j.thresholds,
            stage_seconds=stage_seconds(r.order.stages, time.time_ns()),
            source_path=r.order.source_path,
            predictor_id=r.predictor_id,
            plot_id=plot_id,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        await session.merge(
            RunTime(
                plot_type_id=pt.id,
                run_history_id=row.id,
                order_id=oid,
                run_period=r.order.run_period,
                run_number=r.order.run_number,
                chunk=r.order.chunk,
                verdict=j.verdict,
                confidence=j.confidence,
                confirmed=j.confirmed,
                model_id=r.model_id,
                image_path=live,
                updated_at=now,
            )
        )
        if j.logged:
            session.add(
                MonitoringLog(
                    run_history_id=row.id,
                    plot_type_id=pt.id,
                    run_number=r.order.run_number,
                    chunk=r.order.chunk,
                    verdict=j.verdict,
                    confirmed=j.confirmed,
                    created_at=now,
                )
            )
        await session.commit()


async def _through_grpc(url: str, reports: list[report_pb2.Report]) -> float:
    """Reports sent over 4 Record streams to a real keeper (defaults); timed until all acked."""
    from hydra.v1 import keeper_pb2, keeper_pb2_grpc

    from hydra_common.grpcserver import channel
    from hydra_keeper.service import KeeperService
    from hydra_keeper.settings import KeeperSettings

    with tempfile.TemporaryDirectory() as tmp:
        settings = KeeperSettings(
            database_url=url,
            storage_dir=Path(tmp),
            keeper_host="127.0.0.1",
            keeper_port=0,
            metrics_port=0,
            heartbeat_seconds=3600,
        )
        service = KeeperService(settings, CollectorRegistry())
        await service.start()
        try:
            streams = 4
            parts = [reports[i::streams] for i in range(streams)]

            async def one(part: list[report_pb2.Report]) -> None:
                async with channel(f"127.0.0.1:{service.port}") as ch:
                    call = keeper_pb2_grpc.KeeperServiceStub(ch).Record()
                    for i in range(0, len(part), 64):
                        await call.write(keeper_pb2.RecordRequest(reports=part[i : i + 64]))
                    await call.done_writing()
                    acked = 0
                    async for response in call:
                        acked += len(response.order_ids)
                    assert acked == len(part), (acked, len(part))

            started = time.perf_counter()
            await asyncio.gather(*(one(p) for p in parts))
            elapsed = time.perf_counter() - started
        finally:
            await service.stop()
    return len(reports) / elapsed


async def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text(sql)) or 0)
    finally:
        await engine.dispose()


async def run(n: int, naive_n: int, images: list[bytes]) -> dict[str, float]:
    """One round: all three writers on one fresh MariaDB database; returns its figures."""
    name = f"hydra_bench_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.rpartition('/')[0]}/{name}"
    await _admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        await asyncio.to_thread(upgrade, url)
        plot_types = await _seed(url)
        batched = await _batched(url, _reports(n, plot_types, images, 1), PIPELINE_COMMIT)
        naive = await _naive(url, _reports(naive_n, plot_types, images, 2))
        grpc_rate = await _through_grpc(url, _reports(n, plot_types, images, 3))
        cost_n = PLOT_TYPES + TRICKLE_REPORTS + 20 * PIPELINE_COMMIT
        cost = await _cost(url, _reports(cost_n, plot_types, images, 4))
        total = await _count(url, "SELECT COUNT(*) FROM run_history")
        assert total == n + naive_n + n + cost_n, f"run_history holds {total} rows"
        kept = await _count(url, "SELECT COUNT(*) FROM plots")
    finally:
        await _admin(f"DROP DATABASE IF EXISTS {name}")
    return {
        "keeper_reports_per_s": batched,
        "keeper_naive_reports_per_s": naive,
        "keeper_vs_naive": batched / naive,
        "keeper_grpc_reports_per_s": grpc_rate,
        "keeper_kept_fraction": kept / total,
        **cost,
    }


def measure(quick: bool = False, repeats: int = REPEATS) -> dict[str, Any]:
    """The keeper's figures for ``make bench`` (a smaller run with ``quick``)."""
    from bench.balancer_bench import epic_pngs

    # One "alarm" warning per confirmed Bad would swamp the output.
    logging.getLogger("hydra_keeper").setLevel(logging.ERROR)
    n, naive = (1_360, 150) if quick else (3_400, 300)
    images = epic_pngs()
    rounds = [asyncio.run(run(n, naive, images)) for _ in range(repeats)]
    figures: dict[str, Any] = {}
    for key in rounds[0]:
        figures.update(median_spread(key, [r[key] for r in rounds], 3))
    figures.update(
        keeper_bench_reports=n,
        keeper_bench_naive_reports=naive,
        keeper_bench_commit=PIPELINE_COMMIT,
        keeper_bench_plot_types=PLOT_TYPES,
        keeper_bench_image_mean_bytes=round(sum(map(len, images)) / len(images)),
        keeper_bench_database="MariaDB",
        keeper_bench_flush_log_at_trx_commit=asyncio.run(durability()),
        keeper_bench_repeats=repeats,
    )
    return figures


def main() -> None:
    """Parse arguments, run, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    figures = measure(args.quick, args.repeats)
    for key, value in figures.items():
        print(f"{key:40} {value}")
    print(f"written to {record('keeper', figures)}")


if __name__ == "__main__":
    main()
