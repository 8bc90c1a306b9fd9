"""The model life cycle in the database: versions, promotion, rollback, listing.

A model is trained (status ``trained``) but serves only once promoted: promotion makes it
the plot type's active model and retires the one before it, which stays on disk and in the
database so ``rollback`` can bring it back.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db import schema as s
from hydra_common.errors import Conflict, NotFound


def model_name(plot_type: str) -> str:
    """The model-server name of a plot type's models (safe as a directory name)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", plot_type).strip(".")
    return name or "model"


async def next_version(session: AsyncSession, name: str, model_root: Path) -> int:
    """The next free version of ``name``: above every recorded and every on-disk version."""
    recorded = (
        await session.execute(sa.select(sa.func.max(s.Model.version)).where(s.Model.name == name))
    ).scalar_one_or_none() or 0
    base = model_root / name
    on_disk = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max([recorded, *on_disk]) + 1


async def get_model(session: AsyncSession, model_id: int) -> s.Model:
    """The model with this id; NotFound otherwise."""
    model = await session.get(s.Model, model_id)
    if model is None:
        raise NotFound(f"no model with id {model_id}")
    return model


async def promote(session: AsyncSession, model_id: int, by: str = "") -> s.Model:
    """Make a trained (or retired) model its plot type's active model."""
    model = await get_model(session, model_id)
    if model.status not in (s.ModelStatus.TRAINED, s.ModelStatus.RETIRED, s.ModelStatus.ACTIVE):
        raise Conflict(f"model {model_id} is {model.status.value}; only a trained model serves")
    plot_type = await session.get(s.PlotType, model.plot_type_id, with_for_update=True)
    assert plot_type is not None  # the foreign key guarantees it
    previous_id = plot_type.active_model_id
    if previous_id is not None and previous_id != model.id:
        previous = await session.get(s.Model, previous_id)
        if previous is not None:
            previous.status = s.ModelStatus.RETIRED
    plot_type.active_model_id = model.id
    model.status = s.ModelStatus.ACTIVE
    model.promoted_at = s.utcnow()
    if by:
        model.signed_off_by = by
    await session.flush()
    return model


async def rollback(session: AsyncSession, plot_type_name: str, by: str = "") -> s.Model:
    """Re-activate the model that was active before the current one (its parent)."""
    plot_type = (
        await session.execute(sa.select(s.PlotType).where(s.PlotType.name == plot_type_name))
    ).scalar_one_or_none()
    if plot_type is None:
        raise NotFound(f"unknown plot type {plot_type_name!r}")
    if plot_type.active_model_id is None:
        raise Conflict(f"plot type {plot_type_name!r} has no active model to roll back")
    current = await get_model(session, plot_type.active_model_id)
    target = await _rollback_target(session, current)
    if target is None:
        raise Conflict(f"plot type {plot_type_name!r} has no earlier model to roll back to")
    return await promote(session, target.id, by=by)


async def _rollback_target(session: AsyncSession, current: s.Model) -> s.Model | None:
    if current.parent_model_id is not None:
        parent = await session.get(s.Model, current.parent_model_id)
        if parent is not None and parent.status == s.ModelStatus.RETIRED:
            return parent
    # No usable parent: the most recently promoted retired model of the plot type.
    row = await session.execute(
        sa.select(s.Model)
        .where(
            s.Model.plot_type_id == current.plot_type_id,
            s.Model.status == s.ModelStatus.RETIRED,
            s.Model.id != current.id,
        )
        .order_by(s.Model.promoted_at.desc(), s.Model.id.desc())
        .limit(1)
    )
    return row.scalar_one_or_none()


async def list_models(
    session: AsyncSession, plot_type: str | None = None
) -> list[tuple[str, s.Model]]:
    """Models (with their plot type's name), newest first, optionally of one plot type."""
    query = sa.select(s.PlotType.name, s.Model).join(
        s.PlotType, s.PlotType.id == s.Model.plot_type_id
    )
    if plot_type is not None:
        query = query.where(s.PlotType.name == plot_type)
    rows = await session.execute(query.order_by(s.PlotType.name, s.Model.version.desc()))
    return [(name, model) for name, model in rows.all()]
