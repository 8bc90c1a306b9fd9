"""Alarms as the crew handles them: acknowledging one (the alarm states and their rules:
``hydra_common.alarm_states``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import audit
from hydra_common.alarm_states import AlarmView
from hydra_common.alarm_states import acknowledge as acknowledge_alarm
from hydra_common.db.schema import User


async def acknowledge(session: AsyncSession, plot_type: str, user: User) -> AlarmView:
    """Acknowledge the plot type's raised alarm (audited), and commit."""
    view = await acknowledge_alarm(session, plot_type, user.username)
    audit(session, user, "acknowledge", "alarm", plot_type, after={"state": view.state})
    await session.commit()
    return view
