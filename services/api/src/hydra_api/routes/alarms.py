"""The beam state and the alarms the Run page shows, and acknowledging an alarm."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from hydra_api.deps import Reader, SessionDep, StateDep, require_roles
from hydra_api.domain import alarms
from hydra_common.alarm_states import AlarmView, list_alarms
from hydra_common.beam import beam_status, read_beam
from hydra_common.db.schema import Role, User, utcnow

router = APIRouter(tags=["alarms"])

# Everyone with a login but a viewer: the shift crew, experts, labellers, liaisons, admins.
CREW = frozenset(set(Role) - {Role.VIEWER})
CrewMember = Annotated[User, Depends(require_roles(*CREW))]


class BeamOut(BaseModel):
    """The beam and run state, read the way the keeper gates alarms with it."""

    source: Literal["epics", "rest", "none"] = Field(
        description="`epics` (PVs), `rest` (the latest run conditions) or `none` (no data)."
    )
    state: Literal["on", "off", "unknown"]
    beam_current: float | None = Field(description="nA, as last read.")
    threshold: float = Field(description="The beam is on strictly above this current (nA).")
    run_number: int | None
    run_type: str
    special: bool = Field(description="A special run (alarms suppressed).")
    alarms: bool = Field(description="Whether alarms go through now.")
    reason: str = Field(
        description="Why not: `beam_off`, `special_run`, `beam_unknown` (empty when they do)."
    )
    unknown_policy: Literal["alarm", "suppress"]
    heard_at: datetime | None = Field(description="When the source last answered.")


class AlarmOut(BaseModel):
    """A plot type's alarm."""

    plot_type: str
    state: Literal["raised", "acknowledged", "clear"]
    raised_at: datetime | None
    acknowledged_by: str
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    run_number: int


def _out(view: AlarmView) -> AlarmOut:
    return AlarmOut.model_validate(view, from_attributes=True)


@router.get("/api/beam", response_model=BeamOut)
async def get_beam(session: SessionDep, state: StateDep, _reader: Reader) -> BeamOut:
    """The beam and run state: from EPICS when a beam current PV is configured (what the
    keeper's watcher last heard), else from the latest run conditions."""
    settings = state.settings
    status = beam_status(await read_beam(session, settings), settings, utcnow())
    r = status.reading
    return BeamOut(
        source=r.source,
        state=status.state,
        beam_current=r.beam_current,
        threshold=settings.beam_current_threshold,
        run_number=r.run_number,
        run_type=r.run_type,
        special=status.special,
        alarms=status.alarms,
        reason=status.reason,
        unknown_policy=settings.beam_unknown_policy,
        heard_at=r.heard_at,
    )


@router.get("/api/alarms", response_model=list[AlarmOut])
async def get_alarms(session: SessionDep, _reader: Reader) -> list[AlarmOut]:
    """Plot types whose alarm is raised or acknowledged, by name."""
    return [_out(v) for v in await list_alarms(session, active_only=True)]


@router.post("/api/alarms/{plot_type}/acknowledge", response_model=AlarmOut)
async def acknowledge_alarm(
    session: SessionDep,
    user: CrewMember,
    plot_type: Annotated[str, Path(max_length=128)],
) -> AlarmOut:
    """Acknowledge a plot type's raised alarm (any logged-in role but viewer): it stays
    silent until the plot type recovers. Audited, and written to the monitoring log."""
    return _out(await alarms.acknowledge(session, plot_type, user))
