"""Retention: how fast a pass deletes, and how long one batch holds its transaction.

A database of its own (on the MariaDB test server, and a SQLite file) is seeded with a
year-old backlog: run history, its monitoring log, the feeder's ledger and kept images, a
tenth of them labelled or in a training set. One ``Pruner`` pass (the keeper's, batches of
1,000) deletes what is past retention. Figures: rows deleted per second, and the 95th
percentile and maximum seconds of one batch's transaction: the longest the keeper's writer
can wait behind retention. Every protected image must survive.

    .venv/bin/python -m bench.retention_bench [--rows 100000] [--quick]

Writes ``bench/results/retention.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.results import record
from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_common.db.schema import (
    Classification,
    FedFile,
    Label,
    MonitoringLog,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
    TrainingSet,
    TrainingSetImage,
    utcnow,
)
from hydra_keeper.retention import Pruner, RetentionPolicy
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

CHUNK = 5000


class TimedPruner(Pruner):
    """A pruner that records how long each batch's transaction took."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.batch_seconds: list[float] = []

    async def _batch(self, kind: str, cutoff: datetime) -> tuple[int, int]:
        started = time.perf_counter()
        try:
            return await super()._batch(kind, cutoff)
        finally:
            self.batch_seconds.append(time.perf_counter() - started)


async def _insert(conn: Any, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        await conn.execute(sa.insert(table), rows[i : i + CHUNK])


async def _insert_one(conn: Any, table: sa.Table, **values: Any) -> int:
    key = (await conn.execute(sa.insert(table).values(**values))).inserted_primary_key
    assert key is not None
    return int(key[0])


async def seed(url: str, rows: int) -> tuple[int, set[int]]:
    """A year-old backlog; returns (rows retention may delete, protected plot ids)."""
    old = utcnow() - timedelta(days=365)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            names = await conn.execute(sa.select(Classification.name, Classification.id))
            classes = {name: cid for name, cid in names}
            pt = await _insert_one(
                conn, PlotType.__table__, name=f"bench_{uuid.uuid4().hex[:6]}", created_at=old
            )
            await _insert(
                conn,
                PlotTypeClassification.__table__,
                [{"plot_type_id": pt, "classification_id": classes[n]} for n in ("Good", "Bad")],
            )
            n_plots = rows // 20
            await _insert(
                conn,
                Plot.__table__,
                [
                    {
                        "plot_type_id": pt,
                        "image_path": f"plots/bench/{i}.png",
                        "kept_reason": "unbiased",
                        "created_at": old + timedelta(seconds=i),
                    }
                    for i in range(n_plots)
                ],
            )
            plot_ids = list(
                (
                    await conn.execute(
                        sa.select(Plot.id).where(Plot.plot_type_id == pt).order_by(Plot.id)
                    )
                ).scalars()
            )
            labelled, trained = plot_ids[::10], plot_ids[5::10]
            await _insert(
                conn,
                Label.__table__,
                [
                    {
                        "plot_id": p,
                        "plot_type_id": pt,
                        "classification_id": classes["Good"],
                        "labelled_at": old,
                    }
                    for p in labelled
                ],
            )
            ts = await _insert_one(
                conn,
                TrainingSet.__table__,
                plot_type_id=pt,
                sampling_method="normal",
                created_at=old,
            )
            await _insert(
                conn,
                TrainingSetImage.__table__,
                [
                    {
                        "training_set_id": ts,
                        "plot_id": p,
                        "classification_id": classes["Bad"],
                        "split": "train",
                        "copies": 1,
                    }
                    for p in trained
                ],
            )
            await _insert(
                conn,
                RunHistory.__table__,
                [
                    {
                        "order_id": str(uuid.uuid4()),
                        "plot_type_id": pt,
                        "status": "ok",
                        "verdict": "Good",
                        "weights": {},
                        "thresholds": {},
                        "stage_seconds": {},
                        "created_at": old + timedelta(seconds=i),
                    }
                    for i in range(rows)
                ],
            )
            history = list(
                (
                    await conn.execute(
                        sa.select(RunHistory.id).where(RunHistory.plot_type_id == pt)
                    )
                ).scalars()
            )
            logged = history[::10]
            await _insert(
                conn,
                MonitoringLog.__table__,
                [
                    {"run_history_id": h, "plot_type_id": pt, "verdict": "Bad", "created_at": old}
                    for h in logged
                ],
            )
            await _insert(
                conn,
                FedFile.__table__,
                [
                    {
                        "source_path": f"bench/{pt}/{i}.png",
                        "file_size": 1,
                        "file_mtime_ns": 1,
                        "order_id": str(uuid.uuid4()),
                        "state": "done",
                        "fed_at": old,
                        "done_at": old,
                    }
                    for i in range(rows)
                ],
            )
        protected = set(labelled) | set(trained)
        return rows + len(logged) + rows + (n_plots - len(protected)), protected
    finally:
        await engine.dispose()


async def measure(url: str, rows: int) -> dict[str, float]:
    """Seed, prune once, check; the figures of one back end."""
    expected, protected = await seed(url, rows)
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory() as storage:
            pruner = TimedPruner(engine, Path(storage), RetentionPolicy(batch_size=1000))
            started = time.perf_counter()
            result = await pruner.prune()
            seconds = time.perf_counter() - started
        removed = sum(result.rows.values())
        async with engine.connect() as conn:
            left = set(
                (await conn.execute(sa.select(Plot.id).where(Plot.id.in_(protected)))).scalars()
            )
    finally:
        await engine.dispose()
    if removed != expected or left != protected:
        raise SystemExit(
            f"retention removed {removed} (expected {expected}); "
            f"protected kept {len(left)}/{len(protected)}"
        )
    batches = sorted(pruner.batch_seconds)
    return {
        "rows_removed": removed,
        "seconds": round(seconds, 3),
        "rows_per_s": round(removed / seconds, 1),
        "batches": len(batches),
        "batch_p95_s": round(batches[int(0.95 * (len(batches) - 1))], 4),
        "batch_max_s": round(batches[-1], 4),
    }


def main() -> None:
    """Run on MariaDB and SQLite; print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="run-history rows seeded")
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    figures: dict[str, Any] = {"rows_seeded": rows}
    url = create_mysql_database("hydra_bench_retention")
    try:
        for key, value in asyncio.run(measure(url, rows)).items():
            figures[f"retention_mariadb_{key}"] = value
    finally:
        drop_mysql_database(url)
    with tempfile.TemporaryDirectory() as tmp:
        lite = f"sqlite+aiosqlite:///{Path(tmp) / 'hydra.db'}"
        upgrade(lite)
        for key, value in asyncio.run(measure(lite, rows)).items():
            figures[f"retention_sqlite_{key}"] = value
    for key, value in figures.items():
        print(f"{key:40} {value}")
    print(f"wrote {record('retention', figures)}")


if __name__ == "__main__":
    main()
