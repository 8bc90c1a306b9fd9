"""Masks for accepted problems, applied: a confirmed alarm verdict (Bad) whose Grad-CAM
mass lies mostly inside its plot type's masks in force is recorded ``Accepted``.

The rules of a mask (image-relative rectangles, expiry by run or date) are in
``hydra_common.masks``. Here the keeper reads the masks (cached, re-read every
``refresh_seconds`` like thresholds, so an expert's change applies within that time) and
measures the share of the heat map's mass inside them (``mass_inside``). An image without
a heat map cannot be placed, so it stays an alarm verdict: a mask never hides a problem it
cannot see. The accepted image is still recorded, kept (as ``bad``, its heat map with it)
and shown; it enters the alarm window as a non-alarm image (an alarm raised before the
mask was drawn clears after N accepted images).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
import sqlalchemy as sa
from hydra.v1 import report_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import PlotTypeMask
from hydra_common.logs import get_logger
from hydra_common.masks import Rect, in_force
from hydra_keeper.reference import PlotTypeInfo
from hydra_keeper.verdicts import ACCEPTED, Judgement

log = get_logger(__name__)
masks_t = PlotTypeMask.__table__


def mass_inside(height: int, width: int, values: Sequence[float], rects: Sequence[Rect]) -> float:
    """The share (0..1) of a heat map's mass inside the union of image-relative rectangles.

    The map (``height`` by ``width`` values, row-major) covers the whole image; each value
    is spread evenly over its cell, so a rectangle covering half a cell takes half its
    mass, and overlapping rectangles count once. NaN and negative values weigh nothing;
    a map with no mass (or inconsistent dimensions) gives 0.
    """
    if height <= 0 or width <= 0 or len(values) != height * width or not rects:
        return 0.0
    heat = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), 0.0, None)
    heat = heat.reshape(height, width)
    total = float(heat.sum())
    if total <= 0.0:
        return 0.0
    # Cut the image along every cell edge and every rectangle edge: each piece lies in one
    # cell and wholly inside or outside the union.
    xs = np.unique(np.concatenate([np.linspace(0.0, 1.0, width + 1), _edges(rects, 0)]))
    ys = np.unique(np.concatenate([np.linspace(0.0, 1.0, height + 1), _edges(rects, 1)]))
    mx, my = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = np.zeros((len(my), len(mx)), dtype=bool)
    for r in rects:
        inside |= np.outer((my > r.y0) & (my < r.y1), (mx > r.x0) & (mx < r.x1))
    cols = np.minimum((mx * width).astype(np.int64), width - 1)
    rows = np.minimum((my * height).astype(np.int64), height - 1)
    # Each piece's share of its cell's area, times the cell's heat.
    share = np.outer(np.diff(ys) * height, np.diff(xs) * width)
    mass = float((share * heat[np.ix_(rows, cols)] * inside).sum())
    return min(1.0, mass / total)


def _edges(rects: Sequence[Rect], axis: int) -> np.ndarray:
    pairs = [(r.x0, r.x1) if axis == 0 else (r.y0, r.y1) for r in rects]
    return np.clip(np.asarray(pairs, dtype=np.float64).ravel(), 0.0, 1.0)


@dataclasses.dataclass(frozen=True, slots=True)
class _Mask:
    rect: Rect
    until_run: int | None
    until_time: datetime | None


class Recorded(Protocol):
    """What the writer knows of a new report (its ``hydra_keeper.entries.Entry``)."""

    report: report_pb2.Report
    order_id: str
    plot_type: PlotTypeInfo
    judgement: Judgement


def accepted(j: Judgement) -> Judgement:
    """The judgement recorded for a confirmed alarm verdict inside masks: ``Accepted``,
    confirmed, not an alarm label; the model's verdict is kept in ``accepted_from``."""
    return dataclasses.replace(j, verdict=ACCEPTED, alarm_label=False, accepted_from=j.verdict)


class MaskBook:
    """The masks of every plot type, cached, and their application to a batch."""

    def __init__(self, refresh_seconds: float, accept_fraction: float) -> None:
        self.refresh_seconds = refresh_seconds
        self.accept_fraction = accept_fraction
        self._masks: dict[int, list[_Mask]] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        """Re-read the masks on the next batch that needs them."""
        self._loaded_at = float("-inf")

    async def apply(self, conn: AsyncConnection, entries: Sequence[Recorded], now: datetime) -> int:
        """Turn each confirmed alarm verdict whose heat-map mass inside its plot type's
        masks in force is at least ``accept_fraction`` into ``Accepted``; returns how many."""
        alarms = [e for e in entries if e.judgement.alarm]
        if not alarms:
            return 0  # the hot path: no Bad, no query
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            await self._load(conn, now)
        count = 0
        for e in alarms:
            order = e.report.order
            rects = [
                m.rect
                for m in self._masks.get(e.plot_type.id, ())
                if in_force(m.until_run, m.until_time, order.run_number, now)
            ]
            if not rects or not e.report.HasField("heat_map"):
                continue
            heat = e.report.heat_map
            share = mass_inside(int(heat.height), int(heat.width), heat.values, rects)
            if share >= self.accept_fraction:
                e.judgement = accepted(e.judgement)
                count += 1
                log.info(
                    "alarm verdict accepted by a mask",
                    extra={
                        "order_id": e.order_id,
                        "plot_type": e.plot_type.name,
                        "verdict": e.judgement.accepted_from,
                        "mass_inside": round(share, 3),
                    },
                )
        return count

    async def _load(self, conn: AsyncConnection, now: datetime) -> None:
        c = masks_t.c
        rows = await conn.execute(
            sa.select(c.plot_type_id, c.x0, c.y0, c.x1, c.y1, c.until_run, c.until_time).where(
                sa.or_(c.until_time.is_(None), c.until_time > now)
            )
        )
        masks: dict[int, list[_Mask]] = {}
        for pid, x0, y0, x1, y1, until_run, until_time in rows:
            masks.setdefault(pid, []).append(_Mask(Rect(x0, y0, x1, y1), until_run, until_time))
        self._masks = masks
        self._loaded_at = time.monotonic()
