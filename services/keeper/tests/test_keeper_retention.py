"""Retention: ``hydra prune --dry-run`` reports what would go and removes nothing; ``hydra
prune`` removes exactly that, in batches, and never a labelled image or one in a training set
(nor the Run page's current rows, nor pending ledger rows). On SQLite and on MariaDB, each
test on a database of its own (retention deletes across the whole database)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import (
    Classification,
    FedFile,
    InferenceStatus,
    KeptReason,
    Label,
    MonitoringLog,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
    RunTime,
    Split,
    TrainingSet,
    TrainingSetImage,
    utcnow,
)
from hydra_keeper.cli import register
from hydra_keeper.metrics import RetentionMetrics
from hydra_keeper.retention import Pruner, RetentionPolicy

OLD = timedelta(days=400)  # past every default retention
NEW = timedelta(days=1)  # within every default retention


@dataclass
class Seeded:
    """Ids of the seeded rows, by what retention must do with them."""

    plots: dict[str, int]
    files: dict[str, list[Path]]
    run_history: dict[str, int]
    ledger: dict[str, int]


def _rh(pt: int, at: datetime, plot_id: int | None = None) -> RunHistory:
    return RunHistory(
        order_id=str(uuid.uuid4()),
        plot_type_id=pt,
        status=InferenceStatus.OK,
        verdict="Bad",
        plot_id=plot_id,
        created_at=at,
    )


async def seed(url: str, storage: Path) -> Seeded:
    """A plot type with old and new rows of every kind retention looks at."""
    now = utcnow()
    old, new = now - OLD, now - NEW
    engine = make_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            ids = dict(
                (await s.execute(sa.select(Classification.name, Classification.id))).tuples().all()
            )
            good, bad = ids["Good"], ids["Bad"]
            pt = PlotType(name=f"pt_{uuid.uuid4().hex[:8]}")
            s.add(pt)
            await s.flush()
            s.add_all(
                PlotTypeClassification(plot_type_id=pt.id, classification_id=c) for c in (good, bad)
            )
            kinds = {
                "old_unlabelled": (old, KeptReason.BAD),
                "old_labelled": (old, KeptReason.UNCONFIRMED),
                "old_trained": (old, KeptReason.UNBIASED),
                "old_imported": (old, KeptReason.IMPORTED),
                "new_unlabelled": (new, KeptReason.BAD),
            }
            plots: dict[str, Plot] = {}
            files: dict[str, list[Path]] = {}
            for name, (at, reason) in kinds.items():
                rel = f"plots/{pt.name}/{name}.png"
                heat = f"heatmaps/{pt.name}/{name}.png"
                for p in (rel, heat):
                    (storage / p).parent.mkdir(parents=True, exist_ok=True)
                    (storage / p).write_bytes(b"\x89PNG not really")
                files[name] = [storage / rel, storage / heat]
                plots[name] = Plot(
                    plot_type_id=pt.id,
                    image_path=rel,
                    heatmap_path=heat,
                    kept_reason=reason,
                    created_at=at,
                )
            s.add_all(plots.values())
            await s.flush()
            s.add(
                Label(plot_id=plots["old_labelled"].id, plot_type_id=pt.id, classification_id=bad)
            )
            ts = TrainingSet(plot_type_id=pt.id, sampling_method="normal")
            s.add(ts)
            await s.flush()
            s.add(
                TrainingSetImage(
                    training_set_id=ts.id,
                    plot_id=plots["old_trained"].id,
                    classification_id=good,
                    split=Split.TRAIN,
                )
            )
            rh = {
                "old_logged": _rh(pt.id, old),
                "old_plain": _rh(pt.id, old),
                # The Run page's card: stays however old; its image goes (plot_id nulled).
                "old_current": _rh(pt.id, old, plots["old_unlabelled"].id),
                "new": _rh(pt.id, new),
            }
            s.add_all(rh.values())
            await s.flush()
            s.add(
                RunTime(
                    plot_type_id=pt.id,
                    run_history_id=rh["old_current"].id,
                    order_id=rh["old_current"].order_id,
                    verdict="Bad",
                )
            )
            s.add_all(
                [
                    MonitoringLog(
                        run_history_id=rh["old_logged"].id,
                        plot_type_id=pt.id,
                        verdict="Bad",
                        created_at=old,
                    ),
                    MonitoringLog(
                        run_history_id=rh["new"].id,
                        plot_type_id=pt.id,
                        verdict="Bad",
                        created_at=new,
                    ),
                ]
            )
            ledger = {
                "old_done": FedFile(state="done", fed_at=old, done_at=old),
                "old_pending": FedFile(state="pending", fed_at=old),
                "new_done": FedFile(state="done", fed_at=new, done_at=new),
            }
            for name, f in ledger.items():
                f.source_path = f"Run1/{pt.name}_{name}.png"
                f.file_size, f.file_mtime_ns, f.order_id = 1, 1, str(uuid.uuid4())
            s.add_all(ledger.values())
            await s.commit()
            return Seeded(
                plots={k: v.id for k, v in plots.items()},
                files=files,
                run_history={k: v.id for k, v in rh.items()},
                ledger={k: v.id for k, v in ledger.items()},
            )
    finally:
        await engine.dispose()


async def present(url: str, model: Any, ids: dict[str, int]) -> set[str]:
    """Names of the seeded rows of this table that still exist."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            found = set(
                (await conn.execute(sa.select(model.id).where(model.id.in_(ids.values()))))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    return {name for name, i in ids.items() if i in found}


async def scalar(url: str, stmt: Any) -> Any:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(stmt)
    finally:
        await engine.dispose()


def test_prune_dry_run_reports_then_prune_removes_and_keeps_labelled_images(
    own_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = tmp_path / "storage"
    seeded = asyncio.run(seed(own_db_url, storage))
    monkeypatch.setenv("HYDRA_DATABASE_URL", own_db_url)
    monkeypatch.setenv("HYDRA_STORAGE_DIR", str(storage))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    dry = runner.invoke(app, ["prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    for line in (
        "monitoring_log: would remove 1 (older than",
        "run_history: would remove 2 (older than",
        "fed_files: would remove 1 (older than",
        "plots: would remove 1 (older than",
        "image files: would remove 2",
        "old images kept (labelled or trained on): 3",
    ):
        assert line in dry.output, dry.output
    # Nothing went.
    assert asyncio.run(present(own_db_url, Plot, seeded.plots)) == set(seeded.plots)
    assert asyncio.run(present(own_db_url, RunHistory, seeded.run_history)) == set(
        seeded.run_history
    )
    assert all(p.exists() for paths in seeded.files.values() for p in paths)

    done = runner.invoke(app, ["prune"])
    assert done.exit_code == 0, done.output
    assert "run_history: removed 2" in done.output and "image files: removed 2" in done.output
    assert asyncio.run(present(own_db_url, Plot, seeded.plots)) == {
        "old_labelled",
        "old_trained",
        "old_imported",
        "new_unlabelled",
    }
    assert not any(p.exists() for p in seeded.files["old_unlabelled"])
    for kept in ("old_labelled", "old_trained", "old_imported", "new_unlabelled"):
        assert all(p.exists() for p in seeded.files[kept]), kept
    assert asyncio.run(present(own_db_url, RunHistory, seeded.run_history)) == {
        "old_current",
        "new",
    }
    current = seeded.run_history["old_current"]
    plot_of_current = sa.select(RunHistory.plot_id).where(RunHistory.id == current)
    assert asyncio.run(scalar(own_db_url, plot_of_current)) is None
    assert asyncio.run(present(own_db_url, FedFile, seeded.ledger)) == {"old_pending", "new_done"}
    log_rows = sa.select(sa.func.count()).select_from(MonitoringLog)
    assert asyncio.run(scalar(own_db_url, log_rows)) == 1

    again = runner.invoke(app, ["prune"])
    assert "plots: removed 0" in again.output and "run_history: removed 0" in again.output


def test_batches_metrics_and_forever(own_db_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    registry = CollectorRegistry()

    async def run() -> None:
        seeded = await seed(own_db_url, storage)
        engine = make_engine(own_db_url)
        try:
            forever = Pruner(engine, storage, RetentionPolicy(0, 0, 0, 0))
            assert not forever.policy.enabled
            nothing = await forever.prune()
            assert sum(nothing.rows.values()) == 0 and nothing.files == 0
            assert await present(own_db_url, Plot, seeded.plots) == set(seeded.plots)

            metrics = RetentionMetrics(registry)
            pruner = Pruner(engine, storage, RetentionPolicy(batch_size=1), metrics)
            result = await pruner.prune()
            assert result.rows == {
                "monitoring_log": 1,
                "run_history": 2,
                "shadow_history": 0,
                "fed_files": 1,
                "plots": 1,
            }
            assert await present(own_db_url, Plot, seeded.plots) >= {"old_labelled", "old_trained"}
        finally:
            await engine.dispose()

    asyncio.run(run())

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("hydra_keeper_retention_removed_total", table="run_history") == 2
    assert sample("hydra_keeper_retention_removed_total", table="plots") == 1
    assert sample("hydra_keeper_retention_files_removed_total") == 2
    assert (sample("hydra_keeper_retention_last_run_timestamp_seconds") or 0) > 0
