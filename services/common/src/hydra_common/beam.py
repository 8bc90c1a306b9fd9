"""Beam and run state, and when it lets alarms through: the one home of that rule.

The keeper (which raises alarms) and the API (whose Run page shows the beam) both read
``BeamSettings`` and call ``beam_status``, so "beam on" means the same thing everywhere:
the beam current strictly above ``HYDRA_BEAM_CURRENT_THRESHOLD`` (nA).

Where the state comes from:

- **EPICS** (``HYDRA_EPICS_BEAM_CURRENT_PV`` set): the keeper's beam watcher subscribes to
  the beam current, run number and run type PVs and writes what it hears to ``beam_state``.
  A source that has not answered for ``HYDRA_EPICS_SILENCE_SECONDS`` is *unknown*.
- **REST** (no PV configured): the latest ``run_conditions`` row (``POST
  /api/run-conditions``); none, or one without a beam current, is *unknown*.

Alarms are let through when the beam is on and the run is not special. A special run
(``special`` on the row, or a run type listed in ``HYDRA_SPECIAL_RUN_TYPES``) and beam off
suppress them; verdicts are recorded all the same. While the state is unknown,
``HYDRA_BEAM_UNKNOWN_POLICY`` decides: ``alarm`` (the default: better a false alarm than a
missed one) or ``suppress``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hydra_common.db.schema import BeamState, RunCondition
from hydra_common.settings import HydraSettings

BeamOn = Literal["on", "off", "unknown"]
BeamSource = Literal["epics", "rest", "none"]
BEAM_STATE_ROW = 1  # beam_state holds one row, this id


class BeamSettings(HydraSettings):
    """Where the beam state comes from and how it gates alarms (keeper and API)."""

    beam_current_threshold: float = Field(
        1.0,
        description=(
            "Beam current (nA) above which the beam counts as on: alarms are raised only "
            "then, and the Run page says `beam on` only then."
        ),
    )
    special_run_types: str = Field(
        "cosmics,calibration",
        description=(
            "Comma-separated run types (any case) that suppress alarms; their verdicts are "
            "still recorded."
        ),
    )
    beam_unknown_policy: Literal["alarm", "suppress"] = Field(
        "alarm",
        description=(
            "What alarms do while the beam state is unknown (no run conditions, or the EPICS "
            "source silent): `alarm` as if the beam were on, or `suppress`."
        ),
    )
    epics_beam_current_pv: str = Field(
        "",
        description=(
            "EPICS PV of the beam current (nA). Set: the keeper reads the beam state from "
            "EPICS; empty: from `run_conditions` (`POST /api/run-conditions`)."
        ),
    )
    epics_run_number_pv: str = Field("", description="EPICS PV of the run number (optional).")
    epics_run_type_pv: str = Field("", description="EPICS PV of the run type, a string (optional).")
    epics_silence_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "An EPICS source that has not answered for this long makes the beam state "
            "`unknown` (the watcher reads the PVs at least every third of it)."
        ),
    )

    @property
    def epics_beam(self) -> bool:
        """Whether the beam state comes from EPICS (a beam current PV is configured)."""
        return bool(self.epics_beam_current_pv.strip())

    @property
    def special_types(self) -> frozenset[str]:
        """The special run types, lower case."""
        return frozenset(t.strip().lower() for t in self.special_run_types.split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class BeamReading:
    """What a source last said: values, and when it last answered."""

    source: BeamSource
    beam_current: float | None = None
    run_number: int | None = None
    run_type: str = ""
    special: bool = False  # the run-conditions row's own flag
    heard_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BeamStatus:
    """The beam state and whether alarms go through (``reason`` says why not)."""

    reading: BeamReading
    state: BeamOn
    special: bool
    alarms: bool
    reason: Literal["", "beam_off", "special_run", "beam_unknown"]

    @property
    def beam_on(self) -> int:
        """1 on, 0 off, -1 unknown (the keeper's ``beam_on`` gauge)."""
        return {"on": 1, "off": 0, "unknown": -1}[self.state]


def beam_status(reading: BeamReading, settings: BeamSettings, now: datetime) -> BeamStatus:
    """Apply the threshold, the special run types, the silence timeout and the policy."""
    silent = reading.source == "epics" and (
        reading.heard_at is None
        or (now - reading.heard_at).total_seconds() > settings.epics_silence_seconds
    )
    state: BeamOn
    if silent or reading.beam_current is None:
        state = "unknown"
    else:
        state = "on" if reading.beam_current > settings.beam_current_threshold else "off"
    # What a silent source last said about the run type is no longer known either.
    special = not silent and (
        reading.special or reading.run_type.strip().lower() in settings.special_types
    )
    if special:
        return BeamStatus(reading, state, True, False, "special_run")
    if state == "off":
        return BeamStatus(reading, state, False, False, "beam_off")
    if state == "unknown":
        allowed = settings.beam_unknown_policy == "alarm"
        return BeamStatus(reading, state, False, allowed, "" if allowed else "beam_unknown")
    return BeamStatus(reading, state, False, True, "")


async def read_beam(db: AsyncConnection | AsyncSession, settings: BeamSettings) -> BeamReading:
    """The configured source's last reading, from the database.

    EPICS: the ``beam_state`` row the keeper's watcher writes (none yet: never heard).
    REST: the latest ``run_conditions`` row.
    """
    if settings.epics_beam:
        b = BeamState.__table__.c
        row = (
            await db.execute(
                sa.select(b.beam_current, b.run_number, b.run_type, b.updated_at).where(
                    b.id == BEAM_STATE_ROW
                )
            )
        ).first()
        if row is None:
            return BeamReading("epics")
        return BeamReading("epics", row[0], row[1], row[2] or "", False, row[3])
    r = RunCondition.__table__.c
    latest = (
        await db.execute(
            sa.select(r.beam_current, r.run_number, r.run_type, r.special, r.recorded_at)
            .order_by(r.recorded_at.desc(), r.id.desc())
            .limit(1)
        )
    ).first()
    if latest is None:
        return BeamReading("none")
    return BeamReading("rest", latest[0], latest[1], latest[2] or "", bool(latest[3]), latest[4])
