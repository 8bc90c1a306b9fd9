"""Keeper write throughput on MariaDB: group commit vs one commit per report, same run.

Metadata-only reports (no image, so nothing is kept) for 50 plot types, with the mix of a
hall in steady state (mostly confirmed Good, some unconfirmed, a few confirmed Bad, so
monitoring_log rows are written too). The keeper's ``BatchWriter`` writes them in batches of
``HYDRA_COMMIT_MAX_BATCH`` (256); the naive writer does what a straightforward ORM keeper
does, one transaction per report (look up the order id, insert run_history, upsert
run_time, insert monitoring_log when needed, commit). A third figure sends the reports
through a real keeper over gRPC (streams → queue → group commit → acks).

    python -m bench.keeper_bench [--reports 20000] [--naive 1000]
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.results import record
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.migrate import upgrade
from hydra_common.db.schema import (
    Classification,
    Model,
    MonitoringLog,
    PlotType,
    RunHistory,
    RunTime,
    Threshold,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.verdicts import judge, stage_seconds
from hydra_keeper.writer import BatchWriter

SERVER = os.environ.get("HYDRA_TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306/mysql")
PLOT_TYPES = 50


async def _admin(sql: str) -> None:
    engine = make_engine(SERVER, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


async def _seed(url: str) -> list[tuple[str, int]]:
    """Plot types with a model and thresholds each; returns (name, model id)."""
    engine = make_engine(url)
    out = []
    try:
        async with engine.begin() as conn:
            labels = dict(
                (await conn.execute(sa.select(Classification.name, Classification.id))).all()
            )
            for i in range(PLOT_TYPES):
                name = f"bench_plot_{i:03d}"
                pid = (
                    await conn.execute(
                        sa.insert(PlotType.__table__).values(
                            name=name, collect_percent=0.0, created_at=utcnow()
                        )
                    )
                ).inserted_primary_key[0]
                mid = (
                    await conn.execute(
                        sa.insert(Model.__table__).values(
                            plot_type_id=pid,
                            name=name,
                            version=1,
                            architecture="small",
                            label_order=["Good", "Bad", "NoData"],
                            created_at=utcnow(),
                        )
                    )
                ).inserted_primary_key[0]
                for label, t in (("Good", 0.7), ("Bad", 0.6), ("NoData", 0.8)):
                    await conn.execute(
                        sa.insert(Threshold.__table__).values(
                            model_id=mid,
                            classification_id=labels[label],
                            threshold=t,
                            set_at=utcnow(),
                        )
                    )
                out.append((name, int(mid)))
    finally:
        await engine.dispose()
    return out


def _reports(n: int, plot_types: list[tuple[str, int]], seed: int) -> list[report_pb2.Report]:
    rng = random.Random(seed)
    out = []
    now = time.time_ns()
    for i in range(n):
        name, mid = plot_types[i % len(plot_types)]
        draw = rng.random()
        if draw < 0.90:
            weights = [0.95, 0.03, 0.02]  # confirmed Good
        elif draw < 0.97:
            weights = [0.55, 0.35, 0.10]  # unconfirmed Good
        else:
            weights = [0.05, 0.92, 0.03]  # confirmed Bad
        order = order_pb2.InferenceOrder(
            order_id=uuid7(),
            plot_type=name,
            run_period="RunPeriod-2025-01",
            run_number=5000 + i // 10_000,
            chunk=i // len(plot_types),
            source_path=f"RunPeriod-2025-01/Run5000/{name}_{i:06d}.png",
            stages=order_pb2.StageTimestamps(
                file_ns=now,
                fed_ns=now,
                queued_ns=now,
                dispatched_ns=now,
                predict_start_ns=now,
                predict_end_ns=now,
                reported_ns=now,
            ),
        )
        out.append(
            report_pb2.Report(
                order=order,
                status=report_pb2.REPORT_STATUS_OK,
                model_id=mid,
                model_name=name,
                model_version=1,
                labels=["Good", "Bad", "NoData"],
                weights=weights,
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


async def _naive(url: str, reports: list[report_pb2.Report]) -> float:
    """One transaction per report, ORM objects, thresholds read once (as a cache would)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    cache = ReferenceCache(3600)
    try:
        async with engine.begin() as conn:
            await cache.ensure(conn, reports)
        started = time.perf_counter()
        for r in reports:
            async with sessions() as session:
                oid = r.order.order_id
                exists = await session.scalar(
                    sa.select(RunHistory.id).where(RunHistory.order_id == oid)
                )
                if exists is not None:
                    continue
                pt = cache.plot_types[r.order.plot_type]
                j = judge(r, cache.model_thresholds(r.model_id) or {}, cache.alarm_labels, 0.5)
                now = utcnow()
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
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    return len(reports) / elapsed


async def _through_grpc(url: str, reports: list[report_pb2.Report], batch: int) -> float:
    """Reports sent over 4 Record streams to a real keeper; timed until all are acked."""
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
            commit_max_batch=batch,
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


async def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text("SELECT COUNT(*) FROM run_history")) or 0)
    finally:
        await engine.dispose()


async def run(n: int, naive_n: int, batch: int) -> dict[str, Any]:
    """Run all three writers on one fresh MariaDB database; returns the figures."""
    name = f"hydra_bench_{uuid.uuid4().hex[:8]}"
    url = f"{SERVER.rpartition('/')[0]}/{name}"
    await _admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        await asyncio.to_thread(upgrade, url)
        plot_types = await _seed(url)
        batched = await _batched(url, _reports(n, plot_types, 1), batch)
        naive = await _naive(url, _reports(naive_n, plot_types, 2))
        grpc_rate = await _through_grpc(url, _reports(n, plot_types, 3), batch)
        total = await _count(url)
        assert total == n + naive_n + n, f"run_history holds {total} rows"
    finally:
        await _admin(f"DROP DATABASE IF EXISTS {name}")
    return {
        "keeper_reports_per_s": round(batched, 1),
        "keeper_naive_reports_per_s": round(naive, 1),
        "keeper_vs_naive": round(batched / naive, 2),
        "keeper_grpc_reports_per_s": round(grpc_rate, 1),
        "keeper_bench_reports": n,
        "keeper_bench_naive_reports": naive_n,
        "keeper_bench_batch": batch,
        "keeper_bench_database": "MariaDB",
    }


def measure(quick: bool = False) -> dict[str, Any]:
    """The keeper's figures for ``make bench`` (a smaller run with ``quick``)."""
    # One "alarm" warning per confirmed Bad would swamp the output.
    logging.getLogger("hydra_keeper").setLevel(logging.ERROR)
    n, naive = (3_000, 300) if quick else (20_000, 1_000)
    return asyncio.run(run(n, naive, 256))


def main() -> None:
    """Parse arguments, run, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    # One "alarm" warning per confirmed Bad would swamp the figures.
    logging.getLogger("hydra_keeper").setLevel(logging.ERROR)
    figures = asyncio.run(run(args.reports, args.naive, args.batch))
    print(f"keeper batch writer : {figures['keeper_reports_per_s']:>10,.0f} reports/s")
    print(f"naive, row at a time: {figures['keeper_naive_reports_per_s']:>10,.0f} reports/s")
    print(f"ratio               : {figures['keeper_vs_naive']:>10.1f} x")
    print(f"through gRPC (acked): {figures['keeper_grpc_reports_per_s']:>10,.0f} reports/s")
    print(f"written to {record('keeper', figures)}")


if __name__ == "__main__":
    main()
