"""A plot type with a promoted-style model and thresholds, written straight into the tables
(the keeper's tests and the benchmarks that feed a keeper need exactly that, nothing of the
trainer), the stage timestamps of a report made "now", and the keeper's per-run verdict
counts for seeds that write run_history rows themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from hydra.v1 import order_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import (
    Classification,
    Model,
    PlotType,
    RunHistory,
    RunVerdictCount,
    Threshold,
    utcnow,
)
from hydra_testsupport.rows import inserted_id

LABELS = ("Good", "Bad", "NoData")


async def add_plot_type_with_model(
    conn: AsyncConnection,
    name: str,
    thresholds: Mapping[str, float],
    *,
    labels: Sequence[str] = LABELS,
    detector: str = "",
    collect_percent: float = 0.0,
) -> tuple[int, int]:
    """A plot type, its model version 1 (label order ``labels``) and a threshold per label
    of ``thresholds``; returns (plot type id, model id)."""
    label_ids = dict((await conn.execute(sa.select(Classification.name, Classification.id))).all())
    pid = inserted_id(
        await conn.execute(
            sa.insert(PlotType.__table__).values(
                name=name,
                detector=detector,
                file_type="png",
                collect_percent=collect_percent,
                created_at=utcnow(),
            )
        )
    )
    mid = inserted_id(
        await conn.execute(
            sa.insert(Model.__table__).values(
                plot_type_id=pid,
                name=name,
                version=1,
                architecture="small",
                label_order=list(labels),
                created_at=utcnow(),
            )
        )
    )
    for label, value in thresholds.items():
        await conn.execute(
            sa.insert(Threshold.__table__).values(
                model_id=mid,
                classification_id=label_ids[label],
                threshold=value,
                set_at=utcnow(),
            )
        )
    return pid, mid


def stamped_at(now_ns: int) -> order_pb2.StageTimestamps:
    """Every stage of an order stamped at ``now_ns`` (a report made on the spot)."""
    return order_pb2.StageTimestamps(
        file_ns=now_ns,
        fed_ns=now_ns,
        queued_ns=now_ns,
        dispatched_ns=now_ns,
        predict_start_ns=now_ns,
        predict_end_ns=now_ns,
        reported_ns=now_ns,
    )


async def recount_run_verdicts(conn: AsyncConnection) -> None:
    """Make ``run_verdicts`` the run history counted per run and verdict, as the keeper keeps
    it at every commit (the Summary page reads it): for seeds that insert run_history rows
    themselves rather than through a keeper."""
    rh = RunHistory.__table__
    await conn.execute(sa.delete(RunVerdictCount))
    await conn.execute(
        sa.insert(RunVerdictCount).from_select(
            ["run_number", "verdict", "count"],
            sa.select(rh.c.run_number, rh.c.verdict, sa.func.count()).group_by(
                rh.c.run_number, rh.c.verdict
            ),
        )
    )
