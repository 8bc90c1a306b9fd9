"""A shadow model's figures: how often it agrees with the active model and with the labels
experts gave the same images, what it costs per image, and where it disagrees.

Read from ``shadow_history`` (written by the keeper). The promotion rule that uses them
lives in ``hydra_common.lifecycle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import Classification, Label, Plot, ShadowHistory


@dataclass(frozen=True)
class ShadowFigures:
    """What a shadow model did on the live stream so far."""

    images: int  # shadow verdicts recorded
    errors: int  # shadow predictions that failed (never counted as agreement)
    compared: int  # images both models classified
    agreements: int  # ... with the same verdict
    labelled: int  # compared images an expert has labelled since
    shadow_label_agreements: int  # ... where the shadow model's verdict is the label
    active_label_agreements: int  # ... where the active model's verdict is the label
    seconds_per_image: float | None  # mean cost of the shadow model's Predict per image
    active_seconds_per_image: float | None  # the active model's, on the same batches
    first_at: datetime | None
    last_at: datetime | None

    @property
    def agreement(self) -> float | None:
        """Fraction of compared images where the shadow and active verdicts agree."""
        return self.agreements / self.compared if self.compared else None

    @property
    def label_agreement(self) -> float | None:
        """Fraction of labelled images where the shadow verdict is the expert's label."""
        return self.shadow_label_agreements / self.labelled if self.labelled else None

    @property
    def active_label_agreement(self) -> float | None:
        """The same for the active model, on the same labelled images."""
        return self.active_label_agreements / self.labelled if self.labelled else None


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def figures(session: AsyncSession, model_id: int) -> ShadowFigures:
    """The model's shadow figures over every image it saw in shadow."""
    h = ShadowHistory
    row = (
        await session.execute(
            sa.select(
                sa.func.count(),
                _count(h.ok.is_(False)),
                _count(h.agrees.is_not(None)),
                _count(h.agrees.is_(True)),
                sa.func.avg(sa.case((h.ok.is_(True), h.seconds_per_image))),
                sa.func.avg(sa.case((h.ok.is_(True), h.active_seconds_per_image))),
                sa.func.min(h.created_at),
                sa.func.max(h.created_at),
            ).where(h.model_id == model_id)
        )
    ).one()
    label = Classification.name
    labels = (
        await session.execute(
            sa.select(
                sa.func.count(),
                _count(label == h.verdict),
                _count(label == h.active_verdict),
            )
            .select_from(h)
            .join(Plot, Plot.order_id == h.order_id)
            .join(Label, Label.plot_id == Plot.id)
            .join(Classification, Classification.id == Label.classification_id)
            .where(h.model_id == model_id, h.agrees.is_not(None))
        )
    ).one()
    images, errors, compared, agreements, cost, active_cost, first, last = row
    return ShadowFigures(
        images=int(images),
        errors=int(errors),
        compared=int(compared),
        agreements=int(agreements),
        labelled=int(labels[0]),
        shadow_label_agreements=int(labels[1]),
        active_label_agreements=int(labels[2]),
        seconds_per_image=None if cost is None else float(cost),
        active_seconds_per_image=None if active_cost is None else float(active_cost),
        first_at=_aware(first),
        last_at=_aware(last),
    )


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite: min()/max() come back naive (or as text).
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value

    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC)


async def disagreements(
    session: AsyncSession, model_id: int, limit: int
) -> list[tuple[ShadowHistory, str | None]]:
    """The latest images where the shadow and active verdicts differ, with the expert's label
    when there is one."""
    h = ShadowHistory
    rows = await session.execute(
        sa.select(h, Classification.name)
        .outerjoin(Plot, Plot.order_id == h.order_id)
        .outerjoin(Label, Label.plot_id == Plot.id)
        .outerjoin(Classification, Classification.id == Label.classification_id)
        .where(h.model_id == model_id, h.agrees.is_(False))
        .order_by(h.id.desc())
        .limit(limit)
    )
    return [(sh, name) for sh, name in rows.tuples()]
