"""Retention: old run history, monitoring log, shadow verdicts, ledger rows and kept images
are deleted.

Each kind has its own age (``HYDRA_RETENTION_*_DAYS``; 0 keeps it forever). Rows go in
small batches, one short transaction each, so the keeper's writer and the API never wait
long behind a purge. What the hall cannot get back is never deleted:

- a kept image that is labelled (or was ever labelled), in a model's training set, among a
  model's evaluation images or in a training report, or that was imported;
- the run history row a plot type's Run-page card shows (``run_time``), and any that a
  monitoring-log row still refers to;
- a ledger row still pending (its file has not been fed to the end);
- a shadow model's verdicts (``shadow_history``, and its disagreement images under
  ``shadow/``) while that model is still in shadow: its agreement figures and promotion
  rule read them all, so an evaluation running longer than the retention age keeps its
  evidence whole. Once the shadow is stopped or promoted they go at the run history's age
  (``HYDRA_RETENTION_RUN_HISTORY_DAYS``), like the verdicts they were compared with.

The feeder's ledger is the ``fed_files`` table of the shared database, so it is pruned
here, where the keeper already holds the database. A ledger row is what stops the feeder
feeding a file twice: the feeder leaves alone any unknown file older than its
``HYDRA_MAX_FILE_AGE_DAYS`` (14), so keep the ledger longer than that.

The Summary's verdicts per run (``run_verdicts``) lose the deleted run-history rows in the
transaction that deletes them, so they always equal the history counted per run and verdict.

An image's files are deleted after the transaction that deletes its row has committed: a
crash leaves at worst an orphan file, never a row without its file (as when they are
written, see ``storage``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hydra_common.db.schema import (
    FedFile,
    KeptReason,
    Label,
    LabelHistory,
    ModelEvaluation,
    ModelShadow,
    MonitoringLog,
    Plot,
    RunHistory,
    RunTime,
    RunVerdictCount,
    ShadowHistory,
    TrainingReport,
    TrainingSetImage,
    utcnow,
)
from hydra_common.logs import get_logger
from hydra_common.settings import Duration, HydraSettings, PositiveDuration
from hydra_keeper.loops import every
from hydra_keeper.metrics import RETENTION_TABLES, RetentionMetrics
from hydra_keeper.records import add_run_verdicts

log = get_logger(__name__)

KINDS = RETENTION_TABLES
FIRST_PASS_DELAY_SECONDS = 300.0


class RetentionSettings(HydraSettings):
    """How long the keeper keeps what grows with every image (0 days: forever)."""

    retention_run_history_days: Duration = Field(
        180.0,
        description=(
            "Days of `run_history` kept (0: forever); also of `shadow_history` once its model "
            "is no longer in shadow."
        ),
    )
    retention_monitoring_log_days: Duration = Field(
        180.0, description="Days of the monitoring log kept (0: forever)."
    )
    retention_ledger_days: Duration = Field(
        30.0,
        description=(
            "Days a done row of the feeder's ledger (`fed_files`) is kept (0: forever); keep "
            "it longer than the feeder's `HYDRA_MAX_FILE_AGE_DAYS`, or an old file still in the "
            "input directory is fed again."
        ),
    )
    retention_images_days: Duration = Field(
        180.0,
        description=(
            "Days a kept image nobody labelled is kept (0: forever); labelled images and "
            "those in a training set are never deleted."
        ),
    )
    retention_batch_size: int = Field(
        1000, ge=1, le=50_000, description="Rows deleted per transaction."
    )
    retention_interval_seconds: PositiveDuration = Field(
        3600.0, description="How often the keeper's retention pass runs."
    )
    retention_pause_seconds: Duration = Field(
        0.05, description="Pause between two batches (leaves the database to the writer)."
    )


@dataclass(frozen=True)
class RetentionPolicy:
    """Ages (days; 0 = forever) and the batch size of one retention pass."""

    run_history_days: float = 180.0
    monitoring_log_days: float = 180.0
    ledger_days: float = 30.0
    images_days: float = 180.0
    batch_size: int = 1000
    pause_seconds: float = 0.0

    @classmethod
    def from_settings(cls, s: RetentionSettings) -> RetentionPolicy:
        """The policy the settings describe."""
        return cls(
            run_history_days=s.retention_run_history_days,
            monitoring_log_days=s.retention_monitoring_log_days,
            ledger_days=s.retention_ledger_days,
            images_days=s.retention_images_days,
            batch_size=s.retention_batch_size,
            pause_seconds=s.retention_pause_seconds,
        )

    def days(self, kind: str) -> float:
        """The age (days) past which this kind is removed; 0: never."""
        return {
            "monitoring_log": self.monitoring_log_days,
            "run_history": self.run_history_days,
            "shadow_history": self.run_history_days,
            "fed_files": self.ledger_days,
            "plots": self.images_days,
        }[kind]

    @property
    def enabled(self) -> bool:
        """True when anything is ever removed."""
        return any(self.days(k) > 0 for k in KINDS)


@dataclass
class PruneResult:
    """What one pass removed (or, dry, would remove): rows per kind, image files, and the
    old images kept because they are labelled or trained on."""

    dry_run: bool
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    files: int = 0
    protected_images: int = 0
    cutoffs: dict[str, datetime | None] = field(default_factory=dict)


# --- which rows --------------------------------------------------------------------------


def _protected_plot() -> sa.ColumnElement[bool]:
    """True for a kept image that must stay: labelled (ever), trained or evaluated on, in a
    training report, or imported by the hall."""
    pid = Plot.id
    return sa.or_(
        Plot.kept_reason == KeptReason.IMPORTED,
        sa.exists().where(Label.plot_id == pid),
        sa.exists().where(LabelHistory.plot_id == pid),
        sa.exists().where(TrainingSetImage.plot_id == pid),
        sa.exists().where(ModelEvaluation.plot_id == pid),
        sa.exists().where(TrainingReport.plot_id == pid),
    )


def _old_plots(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(Plot.created_at < cutoff, ~_protected_plot())


def _oldest_first(
    table: sa.Table, stamp: str, *conditions: sa.ColumnElement[bool]
) -> tuple[sa.Table, sa.ColumnElement[int], sa.Select[Any]]:
    """(table, id column, select of the ids meeting the conditions, oldest first by the
    ``stamp`` column); the id breaks ties, so every batch takes the same rows in order."""
    key = table.c.id
    return table, key, sa.select(key).where(*conditions).order_by(table.c[stamp], key)


def _candidates(
    kind: str, cutoff: datetime, log_kept_after: datetime | None = None
) -> tuple[sa.Table, sa.ColumnElement[int], sa.Select[Any]]:
    """(table, id column, select of the ids of this kind that may go, oldest first).

    ``log_kept_after`` (dry runs): a run-history row whose log rows are all older than this
    counts as free, since the pass deletes those log rows before it (a real pass has).
    """
    if kind == "monitoring_log":
        ml = MonitoringLog.__table__
        return _oldest_first(ml, "created_at", ml.c.created_at < cutoff)
    if kind == "run_history":
        rh = RunHistory.__table__
        referenced = MonitoringLog.run_history_id == rh.c.id
        if log_kept_after is not None:
            referenced = sa.and_(referenced, MonitoringLog.created_at >= log_kept_after)
        return _oldest_first(
            rh,
            "created_at",
            rh.c.created_at < cutoff,
            ~sa.exists().where(RunTime.run_history_id == rh.c.id),
            ~sa.exists().where(referenced),
        )
    if kind == "shadow_history":
        sh = ShadowHistory.__table__
        return _oldest_first(
            sh,
            "created_at",
            sh.c.created_at < cutoff,
            ~sa.exists().where(ModelShadow.model_id == sh.c.model_id),
        )
    if kind == "fed_files":
        ff = FedFile.__table__
        return _oldest_first(ff, "done_at", ff.c.state == "done", ff.c.done_at < cutoff)
    if kind == "plots":
        return _oldest_first(Plot.__table__, "created_at", _old_plots(cutoff))
    raise ValueError(f"unknown retention kind {kind!r}")


def _inside(root: Path, rel: str | None) -> Path | None:
    """root/rel when it stays under root (a stored path never leaves it; be sure)."""
    if not rel:
        return None
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) else None


class Pruner:
    """Removes what is older than the policy allows, in batches (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        storage_root: Path,
        policy: RetentionPolicy,
        metrics: RetentionMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.storage_root = storage_root
        self.policy = policy
        self.metrics = metrics
        self.clock = clock

    def cutoffs(self) -> dict[str, datetime | None]:
        """Per kind, the time before which it goes (None: kept forever)."""
        now = self.clock()
        return {
            k: (now - timedelta(days=d)) if (d := self.policy.days(k)) > 0 else None for k in KINDS
        }

    async def dry_run(self) -> PruneResult:
        """What a pass would remove now, counted, with nothing deleted."""
        result = PruneResult(dry_run=True, cutoffs=self.cutoffs())
        async with self.engine.connect() as conn:
            for kind, cutoff in result.cutoffs.items():
                if cutoff is None:
                    continue
                _, _, ids = _candidates(kind, cutoff, result.cutoffs["monitoring_log"])
                result.rows[kind] = await _count(conn, ids)
            images = result.cutoffs["plots"]
            if images is not None:
                old = sa.select(Plot.id).where(Plot.created_at < images, _protected_plot())
                result.protected_images = await _count(conn, old)
                files = sa.select(
                    sa.func.count(Plot.image_path) + sa.func.count(Plot.heatmap_path)
                ).where(_old_plots(images))
                result.files = int(await conn.scalar(files) or 0)
            shadow = result.cutoffs["shadow_history"]
            if shadow is not None:
                _, _, ids = _candidates("shadow_history", shadow)
                shadow_files = sa.select(sa.func.count(ShadowHistory.image_path)).where(
                    ShadowHistory.id.in_(ids.scalar_subquery())
                )
                result.files += int(await conn.scalar(shadow_files) or 0)
        return result

    async def prune(self) -> PruneResult:
        """Delete everything the policy lets go, batch by batch; returns what went."""
        result = PruneResult(dry_run=False, cutoffs=self.cutoffs())
        for kind, cutoff in result.cutoffs.items():
            if cutoff is None:
                continue
            while True:
                removed, files = await self._batch(kind, cutoff)
                result.rows[kind] += removed
                result.files += files
                if self.metrics is not None:
                    self.metrics.removed.labels(table=kind).inc(removed)
                    self.metrics.files_removed.inc(files)
                if removed < self.policy.batch_size:
                    break
                if self.policy.pause_seconds:
                    await asyncio.sleep(self.policy.pause_seconds)
        if self.metrics is not None:
            self.metrics.last_run.set(time.time())
        if any(result.rows.values()):
            log.info(
                "retention pass", extra={**{f"removed_{k}": n for k, n in result.rows.items()}}
            )
        return result

    async def _batch(self, kind: str, cutoff: datetime) -> tuple[int, int]:
        """Delete one batch of this kind; (rows deleted, files deleted)."""
        table, id_column, select = _candidates(kind, cutoff)
        paths: list[str | None] = []
        async with self.engine.begin() as conn:
            # Ids first, then DELETE ... IN: MySQL refuses a DELETE whose subquery reads
            # the same table, and the ids name exactly what this batch removes.
            ids = list((await conn.execute(select.limit(self.policy.batch_size))).scalars())
            if not ids:
                return 0, 0
            if kind == "plots":
                rows = await conn.execute(
                    sa.select(Plot.image_path, Plot.heatmap_path).where(Plot.id.in_(ids))
                )
                for image, heatmap in rows.tuples():
                    paths += [image, heatmap]
                # The inferences that kept these images stay; they just lose the picture.
                await conn.execute(
                    sa.update(RunHistory).where(RunHistory.plot_id.in_(ids)).values(plot_id=None)
                )
            elif kind == "shadow_history":
                rows = await conn.execute(
                    sa.select(ShadowHistory.image_path).where(ShadowHistory.id.in_(ids))
                )
                paths += list(rows.scalars())
            elif kind == "run_history":
                await _uncount_verdicts(conn, ids)
            await conn.execute(sa.delete(table).where(id_column.in_(ids)))
        return len(ids), self._remove_files(paths)

    def _remove_files(self, rels: list[str | None]) -> int:
        removed = 0
        for rel in rels:
            path = _inside(self.storage_root, rel)
            if path is None:
                continue
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:  # the row is gone; an orphan file is only disk space
                log.warning("cannot delete a pruned image", extra={"path": rel, "error": repr(exc)})
        return removed

    async def run_forever(self, interval_seconds: float) -> None:
        """A pass every interval until cancelled, the first a few minutes after start (a
        keeper started for a moment, a test or a drill, deletes nothing); a failed pass is
        logged, counted and tried again at the next interval."""
        await every(interval_seconds, FIRST_PASS_DELAY_SECONDS, self.prune, self._pass_failed)

    def _pass_failed(self, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.errors.inc()
        log.warning("retention pass failed", extra={"error": repr(exc)[:500]})


async def _uncount_verdicts(conn: AsyncConnection, ids: list[int]) -> None:
    """Take these run-history rows (about to be deleted) out of ``run_verdicts``, and delete
    the (run, verdict) rows that reach 0: three statements, whatever the batch's size."""
    rh = RunHistory.__table__
    counted = await conn.execute(
        sa.select(rh.c.run_number, rh.c.verdict, sa.func.count())
        .where(rh.c.id.in_(ids))
        .group_by(rh.c.run_number, rh.c.verdict)
    )
    gone = {(run, verdict): -int(n) for run, verdict, n in counted.tuples()}
    if not gone:
        return
    await add_run_verdicts(conn, gone)
    # Only the runs touched (the key's first column). A history row no keeper counted (one
    # inserted by hand) leaves a negative row: it goes too.
    rv = RunVerdictCount
    await conn.execute(
        sa.delete(rv).where(rv.run_number.in_(sorted({run for run, _ in gone})), rv.count <= 0)
    )


async def _count(conn: AsyncConnection, select: sa.Select[Any]) -> int:
    total = await conn.scalar(sa.select(sa.func.count()).select_from(select.subquery()))
    return int(total or 0)


def describe(result: PruneResult) -> str:
    """``hydra prune``'s report: one line per kind, then the image files."""
    verb = "would remove" if result.dry_run else "removed"
    lines = []
    for kind in KINDS:
        cutoff = result.cutoffs.get(kind)
        when = f"older than {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else "kept forever"
        lines.append(f"{kind}: {verb} {result.rows[kind]} ({when})")
    lines.append(f"image files: {verb} {result.files}")
    if result.dry_run:
        lines.append(f"old images kept (labelled or trained on): {result.protected_images}")
    return "\n".join(lines)
