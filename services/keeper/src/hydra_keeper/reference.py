"""What the keeper reads rather than writes: plot types, labels, thresholds, beam state.

Cached in memory and re-read every ``refresh_seconds`` (so an expert's threshold edit
applies within that time), and immediately for a plot type or model not seen before.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from hydra.v1 import report_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import Classification, Model, PlotType, RunCondition, Threshold, utcnow
from hydra_common.logs import get_logger
from hydra_keeper.storage import image_ext

log = get_logger(__name__)

plot_types_t = PlotType.__table__
classifications_t = Classification.__table__
thresholds_t = Threshold.__table__
models_t = Model.__table__
run_conditions_t = RunCondition.__table__


@dataclass(frozen=True, slots=True)
class PlotTypeInfo:
    """The parts of a plot type the keeper needs."""

    id: int
    name: str
    collect_percent: float
    file_type: str


class ReferenceCache:
    """Plot types by name, alarm labels, and thresholds per model, refreshed periodically."""

    def __init__(self, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self.plot_types: dict[str, PlotTypeInfo] = {}
        self.alarm_labels: frozenset[str] = frozenset()
        # model id → {label: threshold}; a model id absent from the database maps to None.
        self.thresholds: dict[int, dict[str, float] | None] = {}
        self._label_names: dict[int, str] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        """Re-read everything on the next batch."""
        self._loaded_at = float("-inf")

    def needs_refresh(self, reports: Iterable[report_pb2.Report]) -> bool:
        """Whether ``ensure`` has anything to do (stale, or a plot type or model not seen)."""
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            return True
        types = self.plot_types
        models = self.thresholds
        return any(
            r.order.plot_type not in types or (r.model_id and r.model_id not in models)
            for r in reports
        )

    async def ensure(self, conn: AsyncConnection, reports: Iterable[report_pb2.Report]) -> None:
        """Make sure every plot type and model of ``reports`` is known, refreshing if stale."""
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            await self._reload(conn)
        missing_types: dict[str, report_pb2.Report] = {}
        missing_models: set[int] = set()
        for r in reports:
            name = r.order.plot_type
            if name not in self.plot_types:
                missing_types.setdefault(name, r)
            if r.model_id and r.model_id not in self.thresholds:
                missing_models.add(r.model_id)
        if missing_types:
            await self._load_plot_types(conn, missing_types)
        if missing_models:
            await self._load_thresholds(conn, missing_models)

    def model_thresholds(self, model_id: int) -> dict[str, float] | None:
        """A known model's thresholds by label; None when no such model exists."""
        return self.thresholds.get(model_id)

    async def _reload(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(
            sa.select(classifications_t.c.id, classifications_t.c.name, classifications_t.c.alarm)
        )
        self._label_names = {}
        alarm: set[str] = set()
        for cid, name, is_alarm in rows:
            self._label_names[cid] = name
            if is_alarm:
                alarm.add(name)
        self.alarm_labels = frozenset(alarm)
        self.plot_types = {}
        await self._load_plot_types(conn, {})
        known = set(self.thresholds)
        self.thresholds = {}
        if known:
            await self._load_thresholds(conn, known)
        self._loaded_at = time.monotonic()

    async def _load_plot_types(
        self, conn: AsyncConnection, wanted: dict[str, report_pb2.Report]
    ) -> None:
        """Load all plot types (wanted empty) or the wanted ones, creating unknown ones."""
        query = sa.select(
            plot_types_t.c.id,
            plot_types_t.c.name,
            plot_types_t.c.collect_percent,
            plot_types_t.c.file_type,
        )
        if wanted:
            query = query.where(plot_types_t.c.name.in_(list(wanted)))
        for pid, name, percent, file_type in await conn.execute(query):
            self.plot_types[name] = PlotTypeInfo(pid, name, float(percent), file_type)
        for name, report in wanted.items():
            if name not in self.plot_types:
                await self._create_plot_type(conn, name, report)

    async def _create_plot_type(
        self, conn: AsyncConnection, name: str, report: report_pb2.Report
    ) -> None:
        # The feeder only sends known plot types; one missing here was deleted meanwhile.
        # Recording the report under a re-created plot type loses nothing, dropping it would.
        order = report.order
        file_type = image_ext(order.source_path, order.image[:8], "png")
        log.warning("unknown plot type: creating it", extra={"plot_type": name})
        try:
            async with conn.begin_nested():
                await conn.execute(
                    sa.insert(plot_types_t).values(
                        name=name, file_type=file_type, created_at=utcnow()
                    )
                )
        except IntegrityError:
            pass  # created concurrently
        row = (
            await conn.execute(
                sa.select(plot_types_t.c.id, plot_types_t.c.collect_percent).where(
                    plot_types_t.c.name == name
                )
            )
        ).one()
        self.plot_types[name] = PlotTypeInfo(row[0], name, float(row[1]), file_type)

    async def _load_thresholds(self, conn: AsyncConnection, model_ids: set[int]) -> None:
        ids = list(model_ids)
        existing = set(
            (await conn.execute(sa.select(models_t.c.id).where(models_t.c.id.in_(ids)))).scalars()
        )
        for mid in ids:
            self.thresholds[mid] = {} if mid in existing else None
            if mid not in existing:
                log.warning("report names an unknown model id", extra={"model_id": mid})
        rows = await conn.execute(
            sa.select(
                thresholds_t.c.model_id, thresholds_t.c.classification_id, thresholds_t.c.threshold
            ).where(thresholds_t.c.model_id.in_(ids))
        )
        for mid, cid, value in rows:
            label = self._label_names.get(cid)
            table = self.thresholds.get(mid)
            if label is not None and table is not None:
                table[label] = float(value)


async def latest_beam_current(conn: AsyncConnection) -> tuple[bool, float | None]:
    """(known, beam current) of the latest run conditions; known is False when none exist."""
    row = (
        await conn.execute(
            sa.select(run_conditions_t.c.beam_current)
            .order_by(run_conditions_t.c.recorded_at.desc(), run_conditions_t.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return False, None
    return row[0] is not None, row[0]
