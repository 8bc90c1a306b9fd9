"""Reading and acknowledging alarms (``alarm_states``), for the API and the tests.

The keeper decides when a plot type's alarm is raised and cleared (its ``alarms`` module)
and stores ``raised`` or ``clear``. A crew member acknowledges a raised alarm here: that
sets ``acknowledged_by`` / ``acknowledged_at``, which silences the alarm until it clears
(the keeper resets them when it raises the alarm anew), and writes an ``acknowledge``
entry in the monitoring log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hydra_common.db.schema import AlarmState, MonitoringLog, PlotType, RunTime, utcnow
from hydra_common.errors import Conflict, NotFound

RAISED = "raised"


@dataclass(frozen=True, slots=True)
class AlarmView:
    """A plot type's alarm as pages show it."""

    plot_type: str
    state: str  # raised, acknowledged (raised and acknowledged), clear
    raised_at: datetime | None
    acknowledged_by: str
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    run_number: int


def _view(name: str, row: AlarmState) -> AlarmView:
    acked = row.state == RAISED and row.acknowledged_at is not None
    state = "acknowledged" if acked else row.state
    return AlarmView(
        name,
        state,
        row.raised_at,
        row.acknowledged_by if acked else "",
        row.acknowledged_at if acked else None,
        row.cleared_at,
        row.run_number,
    )


async def list_alarms(session: AsyncSession, *, active_only: bool = False) -> list[AlarmView]:
    """Every plot type's alarm (``active_only``: raised or acknowledged ones), by name."""
    stmt = sa.select(PlotType.name, AlarmState).join(
        AlarmState, AlarmState.plot_type_id == PlotType.id
    )
    if active_only:
        stmt = stmt.where(AlarmState.state == RAISED)
    rows = (await session.execute(stmt.order_by(PlotType.name))).tuples().all()
    return [_view(name, row) for name, row in rows]


async def acknowledge(session: AsyncSession, plot_type: str, username: str) -> AlarmView:
    """Acknowledge a plot type's raised alarm (the caller commits).

    Raises NotFound for an unknown plot type and Conflict when its alarm is not raised or
    already acknowledged.
    """
    pt = await session.scalar(sa.select(PlotType).where(PlotType.name == plot_type))
    if pt is None:
        raise NotFound(f"no plot type {plot_type!r}")
    now = utcnow()
    done = await session.execute(
        sa.update(AlarmState)
        .where(
            AlarmState.plot_type_id == pt.id,
            AlarmState.state == RAISED,
            AlarmState.acknowledged_at.is_(None),
        )
        .values(acknowledged_by=username[:64], acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict(f"the alarm of {plot_type} is not raised, or already acknowledged")
    current = (
        await session.execute(
            sa.select(RunTime.verdict, RunTime.confirmed, RunTime.run_number, RunTime.chunk).where(
                RunTime.plot_type_id == pt.id
            )
        )
    ).first()
    verdict, confirmed, run_number, chunk = current or ("Bad", True, 0, -1)
    session.add(
        MonitoringLog(
            run_history_id=None,
            plot_type_id=pt.id,
            run_number=run_number,
            chunk=chunk,
            verdict=verdict,
            confirmed=confirmed,
            event="acknowledge",
            actor=username[:64],
            created_at=now,
        )
    )
    row = await session.get(AlarmState, pt.id, populate_existing=True)
    assert row is not None
    return _view(pt.name, row)


async def alarm_state(conn: AsyncConnection, plot_type_id: int) -> str:
    """A plot type's alarm state (clear, raised, acknowledged); clear when it has none."""
    row = (
        await conn.execute(
            sa.select(AlarmState.state, AlarmState.acknowledged_at).where(
                AlarmState.plot_type_id == plot_type_id
            )
        )
    ).first()
    if row is None:
        return "clear"
    return "acknowledged" if row[0] == RAISED and row[1] is not None else str(row[0])
