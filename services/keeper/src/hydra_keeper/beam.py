"""The beam and run state the keeper gates alarms with: from EPICS, or from the database.

``DatabaseBeam`` reads the latest ``run_conditions`` row (``POST /api/run-conditions``)
for each batch that needs it. ``EpicsBeamWatcher`` subscribes to the configured PVs over
Channel Access (``caproto``), also reads them every third of the silence timeout (a
monitor sends nothing while a value stands still, so only a read tells a quiet IOC from a
dead one), and writes what it heard to ``beam_state`` for the API's Run page. The rule
that turns a reading into on / off / unknown and "alarms allowed" is
``hydra_common.beam.beam_status``.

Channel Access finds PVs by UDP search: the hall sets ``EPICS_CA_ADDR_LIST`` (and
``EPICS_CA_AUTO_ADDR_LIST=NO`` where broadcasts must not leave a network).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from caproto.asyncio.client import PV, Context, Subscription
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hydra_common.beam import (
    BEAM_STATE_ROW,
    BeamReading,
    BeamSettings,
    BeamStatus,
    beam_status,
    read_beam,
)
from hydra_common.db.schema import BeamState, utcnow
from hydra_common.logs import get_logger
from hydra_keeper.dbutil import upsert

log = get_logger(__name__)
beam_state_t = BeamState.__table__
MAX_POLL_SECONDS = 1.0


class BeamGate(Protocol):
    """Where the writer gets the beam status from."""

    async def status(self, conn: AsyncConnection) -> BeamStatus:
        """The beam status now (``conn``: the writer's transaction, for database sources)."""
        ...


class DatabaseBeam:
    """The beam status from what the database holds (run conditions, or ``beam_state``)."""

    def __init__(self, settings: BeamSettings) -> None:
        self.settings = settings

    async def status(self, conn: AsyncConnection) -> BeamStatus:
        """Read the configured source's last reading and apply the rule."""
        return beam_status(await read_beam(conn, self.settings), self.settings, utcnow())


def pv_value(data: Any) -> Any:
    """A Channel Access response's value: the first element, strings decoded."""
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode(errors="replace").rstrip("\x00")
    try:
        first = data[0]
    except (TypeError, IndexError, KeyError):
        return data
    if isinstance(first, bytes | bytearray):
        return bytes(first).decode(errors="replace").rstrip("\x00")
    return first.item() if hasattr(first, "item") else first


class EpicsBeamWatcher:
    """Beam current, run number and run type from EPICS, held in memory (see module doc)."""

    def __init__(
        self,
        settings: BeamSettings,
        engine: AsyncEngine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.names = {
            "beam_current": settings.epics_beam_current_pv.strip(),
            "run_number": settings.epics_run_number_pv.strip(),
            "run_type": settings.epics_run_type_pv.strip(),
        }
        self.names = {k: v for k, v in self.names.items() if v}
        self.values: dict[str, Any] = {}
        self.heard_at: datetime | None = None
        self.connected = False
        self.poll_seconds = min(MAX_POLL_SECONDS, settings.epics_silence_seconds / 3)
        self._context: Context | None = None
        self._pvs: dict[str, PV] = {}
        self._subs: list[tuple[Subscription, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heard_mono = self._connected_mono = 0.0

    def reading(self) -> BeamReading:
        """What the PVs last said, and when the beam current PV last answered."""
        v = self.values
        number = _number(v.get("run_number"))
        return BeamReading(
            "epics",
            _number(v.get("beam_current")),
            None if number is None else int(number),
            str(v.get("run_type", "")),
            False,
            self.heard_at,
        )

    async def status(self, conn: AsyncConnection) -> BeamStatus:
        """The beam status from memory (``conn`` is not needed)."""
        return beam_status(self.reading(), self.settings, self.clock())

    async def start(self) -> None:
        """Search the PVs, subscribe, and start polling (returns at once: an IOC that is
        not up yet is found when it comes)."""
        self._loop = asyncio.get_running_loop()
        await self._connect()
        self._task = asyncio.create_task(self._poll(), name="keeper-beam-watcher")
        log.info("beam watcher started", extra={"pvs": ",".join(self.names.values())})

    async def stop(self) -> None:
        """Stop polling, unsubscribe, and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._disconnect()

    async def _connect(self) -> None:
        self._context = Context(timeout=self.poll_seconds * 2)
        by_name = {pv: key for key, pv in self.names.items()}
        pvs = await self._context.get_pvs(*by_name)
        self._pvs = {by_name[pv.name]: pv for pv in pvs}
        for pv in pvs:
            sub = pv.subscribe(data_type="native")
            self._subs.append((sub, sub.add_callback(self._on_update)))
        self._connected_mono = time.monotonic()

    async def _disconnect(self) -> None:
        for sub, token in self._subs:
            try:
                await asyncio.wait_for(sub.remove_callback(token), 5)
            except Exception as exc:  # the IOC may be gone: nothing to unsubscribe from
                log.debug("unsubscribe failed", extra={"error": repr(exc)})
        self._subs = []
        if self._context is not None:
            try:
                await asyncio.wait_for(self._context.disconnect(), 5)
            except Exception as exc:
                log.warning("beam watcher disconnect failed", extra={"error": repr(exc)})
            self._context = None
        self._pvs = {}

    async def _reconnect_if_silent(self) -> None:
        # caproto notices a vanished IOC only after its echo timeout and then searches
        # with a growing backoff; a fresh context after each silence finds a restarted IOC
        # (or a new one behind the same names) within one poll.
        silence = self.settings.epics_silence_seconds
        now = time.monotonic()
        if now - max(self._heard_mono, self._connected_mono) < silence:
            return
        log.warning("beam source silent: searching again", extra={"pvs": ",".join(self.names)})
        await self._disconnect()
        await self._connect()

    def _on_update(self, sub: Subscription, response: Any) -> None:
        # caproto calls back from a worker thread: hand the value to the event loop.
        key = next((k for k, pv in self._pvs.items() if pv is sub.pv), None)
        if key is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._take, key, pv_value(response.data))

    def _take(self, key: str, value: Any) -> None:
        if self.values.get(key) != value:
            log.info("beam PV changed", extra={"pv": self.names[key], "value": value})
        self.values[key] = value
        if key == "beam_current":
            self.heard_at = self.clock()
            self._heard_mono = time.monotonic()

    async def _poll(self) -> None:
        while True:
            await self._read_all()
            try:
                await self._reconnect_if_silent()
            except Exception as exc:  # the next poll tries again
                log.warning("beam watcher cannot reconnect", extra={"error": repr(exc)[:300]})
            if self.engine is not None:
                try:
                    await self._write_state()
                except Exception as exc:
                    log.warning("cannot write beam_state", extra={"error": repr(exc)[:300]})
            await asyncio.sleep(self.poll_seconds)

    async def _read_all(self) -> None:
        keys = list(self._pvs)
        results = await asyncio.gather(
            *(self._pvs[k].read(data_type="native") for k in keys), return_exceptions=True
        )
        heard = False
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                continue
            self._take(key, pv_value(result.data))
            heard = heard or key == "beam_current"
        if heard != self.connected:
            self.connected = heard
            log.log(
                20 if heard else 30,
                "beam source answering" if heard else "beam source not answering",
                extra={"pv": self.names["beam_current"]},
            )

    async def _write_state(self) -> None:
        assert self.engine is not None
        r = self.reading()
        row = {
            "id": BEAM_STATE_ROW,
            "source": "epics",
            "connected": self.connected,
            "beam_current": r.beam_current,
            "run_number": r.run_number,
            "run_type": r.run_type[:64],
            "updated_at": r.heard_at,
            "written_at": utcnow(),
        }
        async with self.engine.begin() as conn:
            await upsert(conn, beam_state_t, [row], ["id"])


def _number(value: Any) -> float | None:
    """A finite number, or None (a PV not read yet, NaN, a string that is no number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
