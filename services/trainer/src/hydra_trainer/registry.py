"""Models in the database as the trainer sees them: names, versions, listing.

Promotion and rollback are the life cycle's (``hydra_common.lifecycle``), shared with the
API; they are re-exported here for the trainer's callers.
"""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db import schema as s
from hydra_common.lifecycle import get_model, promote, rollback

__all__ = ["get_model", "list_models", "model_name", "next_version", "promote", "rollback"]


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
