"""Which model serves each plot type: the "Hydra heads", read from the database.

A plot type's active model is ``plot_types.active_model_id``; the model's name and version
address it on the model server and ``label_order`` names its outputs. The catalog is
re-read every ``HYDRA_MODEL_REFRESH_SECONDS``, so promoting a model in the web page switches
every predictor replica without a restart. When the database is unreachable the last
catalog stays in use.

A plot type's shadow model (``model_shadows``, put there by ``lifecycle.start_shadow``) is
read the same way: the predictor runs it on the active model's batches as well.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hydra_common.db.schema import Classification, Model, ModelShadow, PlotType
from hydra_common.grpcserver import Backoff
from hydra_common.logs import get_logger
from hydra_predictor.metrics import PredictorMetrics

log = get_logger(__name__)


@dataclass(frozen=True)
class ActiveModel:
    """A model as the predictor uses it: where to call it and how to read its outputs."""

    model_id: int
    name: str
    version: int
    labels: tuple[str, ...]
    alarm_indices: frozenset[int]  # output positions of alarm labels (Bad): heat map wanted


def _active_model(row: Any, alarm_labels: set[str]) -> ActiveModel:
    model_id, name, version, label_order = row
    labels = tuple(str(label) for label in label_order or ())
    return ActiveModel(
        model_id=int(model_id),
        name=name,
        version=int(version),
        labels=labels,
        alarm_indices=frozenset(i for i, label in enumerate(labels) if label in alarm_labels),
    )


class ModelCatalog:
    """Plot type name → active model, refreshed from the database."""

    def __init__(self, engine: AsyncEngine, metrics: PredictorMetrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self.models: dict[str, ActiveModel] = {}
        self.shadows: dict[str, ActiveModel] = {}  # plot type name → its shadow model
        self._by_id: dict[int, ActiveModel] = {}  # the models read last time, by id
        self.ready = asyncio.Event()  # set after the first successful read

    def lookup(self, plot_type: str) -> ActiveModel | None:
        """The active model of a plot type, or None (the plot type has no model)."""
        return self.models.get(plot_type)

    def shadow_for(self, plot_type: str) -> ActiveModel | None:
        """The plot type's shadow model, or None (it has none)."""
        return self.shadows.get(plot_type)

    async def refresh(self) -> None:
        """Read the active models from the database (raises if the database fails).

        Each model is read once, not once per plot type: a hall has ten times more plot
        types than models, and decoding every plot type's ``label_order`` JSON into its own
        ActiveModel was most of the predictor's CPU while idle (15 ms every 5 s for 588
        plot types on 53 models)."""
        async with self.engine.connect() as conn:
            alarm_rows = await conn.execute(
                sa.select(Classification.name).where(Classification.alarm.is_(True))
            )
            alarm_labels = {row[0] for row in alarm_rows}
            active = (
                await conn.execute(
                    sa.select(PlotType.name, PlotType.active_model_id).where(
                        PlotType.active_model_id.is_not(None)
                    )
                )
            ).all()
            shadowed = (
                await conn.execute(
                    sa.select(PlotType.name, ModelShadow.model_id).join(
                        ModelShadow, ModelShadow.plot_type_id == PlotType.id
                    )
                )
            ).all()
            model_rows = await conn.execute(
                sa.select(Model.id, Model.name, Model.version, Model.label_order).where(
                    sa.or_(
                        Model.id.in_(
                            sa.select(PlotType.active_model_id).where(
                                PlotType.active_model_id.is_not(None)
                            )
                        ),
                        Model.id.in_(sa.select(ModelShadow.model_id)),
                    )
                )
            )
            by_id: dict[int, ActiveModel] = {}
            for row in model_rows:
                model = _active_model(row, alarm_labels)
                # The same object as last time when nothing changed: the comparison below
                # then costs an identity check per plot type.
                previous = self._by_id.get(model.model_id)
                by_id[model.model_id] = previous if previous == model else model
        self._by_id = by_id
        # The reads share one transaction (one snapshot on InnoDB); should a model still go
        # between them, its plot types have no model until the next refresh.
        models = {name: by_id[mid] for name, mid in active if mid in by_id}
        shadows = {name: by_id[mid] for name, mid in shadowed if mid in by_id}
        changed = models != self.models or shadows != self.shadows
        self.models = models
        self.shadows = shadows
        self.metrics.shadow_models.set(len(shadows))
        self.metrics.active_models.set(len(models))
        self.ready.set()
        if changed:
            log.info(
                "active models",
                extra={
                    "count": len(models),
                    "models": ",".join(f"{m.name}:{m.version}" for m in models.values())[:2000],
                    "shadows": ",".join(f"{m.name}:{m.version}" for m in shadows.values())[:2000],
                },
            )

    async def run(self, interval: float) -> None:
        """Refresh forever: every ``interval`` seconds, sooner retries while the database fails."""
        backoff = Backoff(initial=0.5, cap=interval)
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("cannot read active models", extra={"error": str(exc)[:500]})
                await backoff.wait()
                continue
            backoff.reset()
            await asyncio.sleep(interval)
