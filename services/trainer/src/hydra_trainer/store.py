"""Database access the trainer needs: plot types, labels and labelled images."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import labels as hall_labels
from hydra_common.db import schema as s
from hydra_common.errors import Conflict, InvalidInput, NotFound
from hydra_trainer.dataset import LabelledImage


async def classifications(session: AsyncSession) -> dict[str, s.Classification]:
    """The shared label set by name."""
    rows = (await session.execute(sa.select(s.Classification))).scalars().all()
    return {c.name: c for c in rows}


async def get_plot_type(session: AsyncSession, name: str) -> s.PlotType:
    """The plot type called ``name``; NotFound when there is none."""
    row = (
        await session.execute(sa.select(s.PlotType).where(s.PlotType.name == name))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"unknown plot type {name!r}")
    return row


async def add_plot_type(
    session: AsyncSession,
    name: str,
    labels: Sequence[str],
    *,
    detector: str = "",
    collect_percent: float = 1.0,
    file_type: str = "png",
    chunked: bool = False,
    alarm: Collection[str] = (),
    untrainable: Collection[str] = (),
    colors: Mapping[str, str] | None = None,
) -> s.PlotType:
    """Create a plot type with its valid labels, adding the labels the hall has not seen.

    ``alarm``, ``untrainable`` and ``colors`` describe new labels (see
    ``hydra_common.labels.ensure_labels``)."""
    if not name or "/" in name:
        raise InvalidInput(f"invalid plot type name {name!r}")
    existing = (
        await session.execute(sa.select(s.PlotType.id).where(s.PlotType.name == name))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"plot type {name!r} already exists")
    if not 0 <= collect_percent <= 100:
        raise InvalidInput("collect percent must be within 0..100")
    ensured = await hall_labels.ensure_labels(
        session, labels, alarm=alarm, untrainable=untrainable, colors=colors
    )
    plot_type = s.PlotType(
        name=name,
        detector=detector or name.split("_", 1)[0],
        collect_percent=collect_percent,
        file_type=file_type.lower().lstrip("."),
        chunked=chunked,
    )
    session.add(plot_type)
    await session.flush()
    session.add_all(
        s.PlotTypeClassification(plot_type_id=plot_type.id, classification_id=c.id)
        for c in ensured.labels
    )
    await session.flush()
    return plot_type


async def valid_labels(session: AsyncSession, plot_type_id: int) -> list[s.Classification]:
    """The labels valid for a plot type, in the shared set's order."""
    rows = await session.execute(
        sa.select(s.Classification)
        .join(
            s.PlotTypeClassification,
            s.PlotTypeClassification.classification_id == s.Classification.id,
        )
        .where(s.PlotTypeClassification.plot_type_id == plot_type_id)
        .order_by(s.Classification.id)
    )
    return list(rows.scalars().all())


async def load_labelled_images(
    session: AsyncSession, plot_type: s.PlotType, storage_root: Path
) -> list[LabelledImage]:
    """Every image of the plot type with a trainable, currently valid label."""
    rows = await session.execute(
        sa.select(s.Plot.id, s.Plot.image_path, s.Classification.name)
        .join(s.Label, s.Label.plot_id == s.Plot.id)
        .join(s.Classification, s.Classification.id == s.Label.classification_id)
        .join(
            s.PlotTypeClassification,
            sa.and_(
                s.PlotTypeClassification.plot_type_id == s.Plot.plot_type_id,
                s.PlotTypeClassification.classification_id == s.Classification.id,
            ),
        )
        .where(s.Plot.plot_type_id == plot_type.id, s.Classification.trainable.is_(True))
        .order_by(s.Plot.id)
    )
    return [
        LabelledImage(plot_id=pid, path=str(storage_root / path), label=label)
        for pid, path, label in rows.all()
    ]
