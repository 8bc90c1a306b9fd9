"""Which model serves each plot type: the "Hydra heads", read from the database.

A plot type's active model is ``plot_types.active_model_id``; the model's name and version
address it on the model server and ``label_order`` names its outputs. The catalog is
re-read every ``HYDRA_MODEL_REFRESH_SECONDS``, so promoting a model in the web page switches
every predictor replica without a restart. When the database is unreachable the last
catalog stays in use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hydra_common.db.schema import Classification, Model, PlotType
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


class ModelCatalog:
    """Plot type name → active model, refreshed from the database."""

    def __init__(self, engine: AsyncEngine, metrics: PredictorMetrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self.models: dict[str, ActiveModel] = {}
        self.ready = asyncio.Event()  # set after the first successful read

    def lookup(self, plot_type: str) -> ActiveModel | None:
        """The active model of a plot type, or None (the plot type has no model)."""
        return self.models.get(plot_type)

    async def refresh(self) -> None:
        """Read the active models from the database (raises if the database fails)."""
        async with self.engine.connect() as conn:
            alarm_rows = await conn.execute(
                sa.select(Classification.name).where(Classification.alarm.is_(True))
            )
            alarm_labels = {row[0] for row in alarm_rows}
            rows = await conn.execute(
                sa.select(
                    PlotType.name, Model.id, Model.name, Model.version, Model.label_order
                ).join(Model, PlotType.active_model_id == Model.id)
            )
            models: dict[str, ActiveModel] = {}
            for plot_type, model_id, name, version, label_order in rows:
                labels = tuple(str(label) for label in label_order or ())
                models[plot_type] = ActiveModel(
                    model_id=int(model_id),
                    name=name,
                    version=int(version),
                    labels=labels,
                    alarm_indices=frozenset(
                        i for i, label in enumerate(labels) if label in alarm_labels
                    ),
                )
        changed = models != self.models
        self.models = models
        self.metrics.active_models.set(len(models))
        self.ready.set()
        if changed:
            log.info(
                "active models",
                extra={
                    "count": len(models),
                    "models": ",".join(f"{m.name}:{m.version}" for m in models.values())[:2000],
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
