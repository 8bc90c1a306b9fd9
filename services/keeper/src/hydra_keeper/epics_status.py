"""Hydra's status as EPICS PVs, for the control room's own displays and archiver.

A Channel Access server (``caproto``) in the keeper serves, with ``HYDRA_EPICS_PREFIX``
(default ``HYDRA:``) in front of every name:

- ``<prefix><plot type>:VERDICT`` (string): the latest verdict (``Good``, ``Bad``,
  ``NoModel``...), ``<prefix><plot type>:CONFIDENCE`` (0..1) and ``<prefix><plot
  type>:ALARM`` (1 while its alarm is raised or acknowledged, with MAJOR severity while
  raised and unacknowledged; 0 when clear);
- ``<prefix>ALARMING``: how many plot types are alarming, ``<prefix>UNACKED``: how many
  of those nobody acknowledged yet.

The values are re-read from the database every ``HYDRA_EPICS_PUBLISH_SECONDS`` (the API's
acknowledgements land there too); a new plot type's PVs appear with its first verdict.
The server binds the interfaces of ``EPICS_CAS_INTF_ADDR_LIST`` and the port of
``EPICS_CA_SERVER_PORT`` (the standard variables; the chart sets them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from caproto import (
    AlarmSeverity,
    AlarmStatus,
    ChannelData,
    ChannelDouble,
    ChannelInteger,
    ChannelString,
)
from caproto.asyncio.server import Context
from sqlalchemy.ext.asyncio import AsyncEngine

from hydra_common.db.schema import AlarmState, PlotType, RunTime
from hydra_common.logs import get_logger
from hydra_keeper.alarms import ACKNOWLEDGED, RAISED
from hydra_keeper.settings import KeeperSettings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PlotStatus:
    """What is published for one plot type."""

    verdict: str
    confidence: float
    alarm: str  # clear, raised, acknowledged


async def read_status(engine: AsyncEngine) -> dict[str, PlotStatus]:
    """Every plot type with a verdict: its latest verdict, confidence and alarm state."""
    a = AlarmState.__table__.c
    r = RunTime.__table__.c
    p = PlotType.__table__.c
    stmt = (
        sa.select(p.name, r.verdict, r.confidence, a.state)
        .select_from(RunTime.__table__)
        .join(PlotType.__table__, p.id == r.plot_type_id)
        .outerjoin(AlarmState.__table__, a.plot_type_id == r.plot_type_id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {name: PlotStatus(v, float(c or 0.0), s or "clear") for name, v, c, s in rows}


async def stop_server(context: Context, task: asyncio.Task[None]) -> None:
    """Stop a caproto server task without corrupting the event loop.

    caproto's server closes its listening sockets when cancelled but never closes the
    asyncio server that watches them, so the loop keeps a reader on a closed descriptor,
    and the next socket to get that number (a database connection...) breaks. Removing
    the readers first avoids it.
    """
    loop = asyncio.get_running_loop()
    for sock in context.tcp_sockets.values():
        if sock.fileno() >= 0:
            loop.remove_reader(sock.fileno())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class StatusPublisher:
    """Serves the status PVs and refreshes them from the database (see module doc)."""

    def __init__(self, settings: KeeperSettings, engine: AsyncEngine) -> None:
        self.prefix = settings.epics_prefix
        self.period = settings.epics_publish_seconds
        self.engine = engine
        self.pvdb: dict[str, ChannelData] = {
            f"{self.prefix}ALARMING": ChannelInteger(value=0),
            f"{self.prefix}UNACKED": ChannelInteger(value=0),
        }
        self.port = 0
        self._context: Context | None = None
        self._server: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the Channel Access server and the refresh loop; sets ``port`` (TCP)."""
        self._context = Context(self.pvdb)
        self._server = asyncio.create_task(self._context.run(), name="keeper-epics-server")
        while self._context.port is None:
            if self._server.done():
                self._server.result()  # raises why it could not start
            await asyncio.sleep(0.01)
        self.port = int(self._context.port)
        try:
            await self.refresh()
        except Exception as exc:  # the database may still be starting
            log.warning("EPICS status not read yet", extra={"error": repr(exc)[:300]})
        self._refresher = asyncio.create_task(self._run(), name="keeper-epics-status")
        log.info("EPICS status server started", extra={"prefix": self.prefix, "port": self.port})

    async def stop(self) -> None:
        """Stop refreshing and serving."""
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._context is not None and self._server is not None:
            await stop_server(self._context, self._server)
        self._refresher = self._server = self._context = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("EPICS status refresh failed", extra={"error": repr(exc)[:300]})

    async def refresh(self) -> None:
        """Read the status and write every PV whose value changed."""
        status = await read_status(self.engine)
        for name, s in status.items():
            await self._publish_plot(name, s)
        alarming = sum(1 for s in status.values() if s.alarm in (RAISED, ACKNOWLEDGED))
        unacked = sum(1 for s in status.values() if s.alarm == RAISED)
        await self._set(f"{self.prefix}ALARMING", alarming)
        await self._set(f"{self.prefix}UNACKED", unacked)

    async def _publish_plot(self, name: str, s: PlotStatus) -> None:
        base = f"{self.prefix}{name}"
        if f"{base}:VERDICT" not in self.pvdb:
            # Added to the served database: the server looks names up on every search.
            self.pvdb[f"{base}:VERDICT"] = ChannelString(value=s.verdict[:39])
            self.pvdb[f"{base}:CONFIDENCE"] = ChannelDouble(value=s.confidence, precision=3)
            self.pvdb[f"{base}:ALARM"] = ChannelInteger(value=0)
        await self._set(f"{base}:VERDICT", s.verdict[:39])
        await self._set(f"{base}:CONFIDENCE", round(s.confidence, 6))
        alarm = self.pvdb[f"{base}:ALARM"]
        value = int(s.alarm in (RAISED, ACKNOWLEDGED))
        severity = AlarmSeverity.MAJOR_ALARM if s.alarm == RAISED else AlarmSeverity.NO_ALARM
        if alarm.value != value or alarm.alarm.severity != severity:
            status = AlarmStatus.STATE if severity else AlarmStatus.NO_ALARM
            await alarm.alarm.write(status=status, severity=severity)
            await alarm.write(value)

    async def _set(self, name: str, value: Any) -> None:
        channel = self.pvdb[name]
        if channel.value != value:
            await channel.write(value)
