"""Masks for accepted problems: the one home of their rules.

An expert marks a region of a plot type's image where a known problem is accepted ("dead
channel, accepted until run N or date D"), with a reason. Rectangles are image-relative
(0..1, origin top left), so they survive a change of resolution.

- **In force**: until its run (the image's run number is at most ``until_run``) and until
  its date (now before ``until_time``); a mask with both expires at whichever comes first.
  Every mask has at least one of the two: an accepted problem expires by itself.
- **Replace**: a plot type's masks are set as a whole (the API's ``PUT``); the change is
  audited (before and after) in the caller's transaction, and the caller commits.
- The keeper applies them (its masks module): a confirmed alarm verdict whose
  Grad-CAM mass lies mostly inside the masks in force is recorded ``Accepted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import AuditLog, PlotTypeMask, utcnow
from hydra_common.errors import InvalidInput

MAX_MASKS_PER_PLOT_TYPE = 16
MAX_REASON_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Rect:
    """An image-relative rectangle: 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1 (top left origin)."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True, slots=True)
class MaskSpec:
    """One mask as an expert sets it."""

    rect: Rect
    reason: str
    until_run: int | None = None
    until_time: datetime | None = None


def in_force(
    until_run: int | None, until_time: datetime | None, run_number: int, now: datetime
) -> bool:
    """Whether a mask with this expiry applies to an image of ``run_number`` at ``now``."""
    if until_run is not None and run_number > until_run:
        return False
    return until_time is None or now < until_time


def validate(spec: MaskSpec) -> None:
    """Refuse (InvalidInput) a mask outside the image, empty, without a reason or expiry."""
    r = spec.rect
    for name, value in (("x0", r.x0), ("y0", r.y0), ("x1", r.x1), ("y1", r.y1)):
        if not 0.0 <= value <= 1.0:  # also refuses NaN
            raise InvalidInput(f"mask coordinate {name}={value} is outside 0..1")
    if not (r.x0 < r.x1 and r.y0 < r.y1):
        raise InvalidInput("a mask must be a non-empty rectangle (x0 < x1 and y0 < y1)")
    if not spec.reason.strip():
        raise InvalidInput("a mask needs a reason")
    if len(spec.reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"a mask's reason is at most {MAX_REASON_LENGTH} characters")
    if spec.until_run is None and spec.until_time is None:
        raise InvalidInput("a mask needs an expiry: until a run number, a date, or both")
    if spec.until_run is not None and spec.until_run < 0:
        raise InvalidInput("until_run must be a run number (>= 0)")
    if spec.until_time is not None and spec.until_time.tzinfo is None:
        raise InvalidInput("until_time must carry a time zone (UTC)")


def _as_dict(m: PlotTypeMask) -> dict[str, Any]:
    return {
        "x0": m.x0,
        "y0": m.y0,
        "x1": m.x1,
        "y1": m.y1,
        "reason": m.reason,
        "until_run": m.until_run,
        "until_time": m.until_time.isoformat() if m.until_time else None,
        "created_by": m.created_by,
    }


async def masks_of(session: AsyncSession, plot_type_id: int) -> list[PlotTypeMask]:
    """A plot type's masks (in force or expired), in the order they were set."""
    rows = await session.scalars(
        sa.select(PlotTypeMask)
        .where(PlotTypeMask.plot_type_id == plot_type_id)
        .order_by(PlotTypeMask.id)
    )
    return list(rows)


async def all_masks(session: AsyncSession) -> list[PlotTypeMask]:
    """Every plot type's masks (the Run page draws them on its cards)."""
    rows = await session.scalars(
        sa.select(PlotTypeMask).order_by(PlotTypeMask.plot_type_id, PlotTypeMask.id)
    )
    return list(rows)


async def replace(
    session: AsyncSession, plot_type_id: int, specs: Sequence[MaskSpec], by: str
) -> list[PlotTypeMask]:
    """Set a plot type's masks to ``specs`` (validated), audited; the caller commits."""
    if len(specs) > MAX_MASKS_PER_PLOT_TYPE:
        raise InvalidInput(f"at most {MAX_MASKS_PER_PLOT_TYPE} masks per plot type")
    for spec in specs:
        validate(spec)
    before = [_as_dict(m) for m in await masks_of(session, plot_type_id)]
    now = utcnow()
    new = [
        PlotTypeMask(
            plot_type_id=plot_type_id,
            x0=s.rect.x0,
            y0=s.rect.y0,
            x1=s.rect.x1,
            y1=s.rect.y1,
            reason=s.reason.strip(),
            until_run=s.until_run,
            until_time=s.until_time,
            created_by=by,
            created_at=now,
        )
        for s in specs
    ]
    await session.execute(sa.delete(PlotTypeMask).where(PlotTypeMask.plot_type_id == plot_type_id))
    session.add_all(new)
    session.add(
        AuditLog(
            username=by,
            action="set_masks",
            entity="plot_type",
            entity_id=str(plot_type_id),
            before={"masks": before},
            after={"masks": [_as_dict(m) for m in new]},
        )
    )
    await session.flush()
    return new
