"""Alarms that do not cry wolf: the decision (K of N, repeats, acknowledge, clear) and
raising them (a metric for Prometheus alert rules, a log event, and the hall's hook).

The decision, per plot type, over its images in the order the keeper records them (a
late arrival counts too: no Bad is ignored):

- Each image's verdict enters a window of the plot type's last N: a confirmed alarm verdict
  (Bad), an unconfirmed one, or anything else. NoModel and Error images do not enter it.
- The alarm is *raised* when K of the window are confirmed alarm verdicts (default 2 of 3,
  ``HYDRA_ALARM_BAD_COUNT`` / ``HYDRA_ALARM_WINDOW``, per plot type in
  ``HYDRA_ALARM_WINDOW_OVERRIDES``): one beep, a ``raise`` in the monitoring log.
- It *clears* only when none of the window is an alarm verdict, confirmed or not (the
  plot type recovered): a ``clear`` in the log. A plot flickering between Good and Bad at a
  threshold's edge therefore raises one alarm, not one per flip.
- While raised it beeps again for an alarm verdict at most every
  ``HYDRA_ALARM_REPEAT_SECONDS``; once a crew member *acknowledges* it (the API), it stays
  silent until it clears.
- A confirmed alarm verdict while the beam state forbids alarms (beam off, a special run,
  unknown under the ``suppress`` policy; see ``hydra_common.beam``) is recorded and does
  not enter the window.

The hook (``HYDRA_ALARM_COMMAND``) runs in the background with each beep as JSON on stdin;
a slow or failing hook never holds up recording.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.beam import BeamStatus
from hydra_common.db.schema import AlarmState
from hydra_common.logs import get_logger
from hydra_keeper.beam import BeamGate
from hydra_keeper.dbutil import upsert
from hydra_keeper.entries import Entry
from hydra_keeper.metrics import KeeperMetrics
from hydra_keeper.transitions import REFRESH_CHUNK

log = get_logger(__name__)

MAX_RUNNING_COMMANDS = 8
COMMAND_TIMEOUT_SECONDS = 30.0
CLOSE_WAIT_SECONDS = 5.0

alarm_states_t = AlarmState.__table__

# Window values: what one image said.
OTHER, UNCONFIRMED, CONFIRMED = 0, 1, 2
CLEAR, RAISED, ACKNOWLEDGED = "clear", "raised", "acknowledged"
Event = Literal["", "raise", "clear"]


@dataclass
class Alarm:
    """A beep: a raised alarm (``event`` ``raise``) or a repeat while raised (``repeat``)."""

    order_id: str
    plot_type: str
    run_period: str
    run_number: int
    chunk: int
    verdict: str
    confidence: float
    threshold: float
    beam_current: float | None
    model_id: int | None
    image_path: str
    heatmap_path: str | None
    event: str = "raise"
    beam: str = "unknown"
    run_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The alarm as a JSON-ready dict (what the alarm command reads on stdin)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AlarmRules:
    """K of N per plot type, and the least time between repeated beeps."""

    bad_count: int = 2
    window: int = 3
    overrides: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    repeat_seconds: float = 300.0

    def k_of_n(self, plot_type: str) -> tuple[int, int]:
        """(K, N) for a plot type."""
        k, n = self.overrides.get(plot_type, (self.bad_count, self.window))
        return max(1, k), max(1, n, k)


@dataclass(slots=True)
class Sighting:
    """One image of a plot type, in order, as the alarm decision sees it."""

    order_id: str
    plot_type_id: int
    plot_type: str
    run_number: int
    counts: bool  # an OK inference (NoModel and Error say nothing about the plot)
    value: int  # OTHER, UNCONFIRMED or CONFIRMED


@dataclass(slots=True)
class Outcome:
    """What one image did to its plot type's alarm."""

    event: Event = ""
    beep: bool = False
    suppressed: str = ""  # why a confirmed alarm verdict did not count (beam_off...)


@dataclass(slots=True)
class PlotAlarm:
    """A plot type's alarm state (an ``alarm_states`` row)."""

    plot_type_id: int
    state: str = CLEAR
    recent: list[int] = field(default_factory=list)
    last_order_id: str = ""
    run_number: int = 0
    raised_at: datetime | None = None
    raised_order_id: str = ""
    last_beep_at: datetime | None = None
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    cleared_at: datetime | None = None
    updated_at: datetime | None = None
    raised_now: bool = False  # raised in this batch: any earlier acknowledgement is void

    def step(
        self, s: Sighting, rules: AlarmRules, beam: BeamStatus | None, now: datetime
    ) -> Outcome:
        """Take one image into the window; raise, repeat or clear as the rules say."""
        if not s.counts:
            return Outcome()
        if s.value == CONFIRMED and beam is not None and not beam.alarms:
            return Outcome(suppressed=beam.reason)
        k, n = rules.k_of_n(s.plot_type)
        self.recent = [*self.recent, s.value][-n:]
        self.last_order_id, self.run_number, self.updated_at = s.order_id, s.run_number, now
        confirmed = sum(1 for v in self.recent if v == CONFIRMED)
        if self.state == CLEAR:
            if confirmed >= k:
                self.state, self.raised_at, self.raised_order_id = RAISED, now, s.order_id
                self.last_beep_at, self.acknowledged_by, self.acknowledged_at = now, "", None
                self.raised_now = True
                return Outcome("raise", True)
            return Outcome()
        if not any(self.recent):
            self.state, self.cleared_at = CLEAR, now
            return Outcome("clear")
        due = self.last_beep_at is None or (
            (now - self.last_beep_at).total_seconds() >= rules.repeat_seconds
        )
        if self.state == RAISED and s.value == CONFIRMED and due:
            self.last_beep_at = now
            return Outcome(beep=True)
        return Outcome()

    def row(self) -> dict[str, Any]:
        """The ``alarm_states`` row as the keeper writes it.

        The keeper stores ``clear`` or ``raised`` and leaves the acknowledgement columns to
        the API (so an acknowledgement made during a batch is never overwritten), except
        when it raises the alarm anew: then an old acknowledgement no longer holds.
        """
        row = {
            "plot_type_id": self.plot_type_id,
            "state": CLEAR if self.state == CLEAR else RAISED,
            "recent": list(self.recent),
            "last_order_id": self.last_order_id,
            "run_number": self.run_number,
            "raised_at": self.raised_at,
            "raised_order_id": self.raised_order_id,
            "last_beep_at": self.last_beep_at,
            "cleared_at": self.cleared_at,
            "updated_at": self.updated_at,
        }
        if self.raised_now:
            row.update(acknowledged_by=self.acknowledged_by, acknowledged_at=self.acknowledged_at)
        return row


def acknowledged(state: str, acknowledged_at: datetime | None) -> bool:
    """Whether a stored alarm is raised and acknowledged (the API sets ``acknowledged_at``
    on a raised alarm; the keeper clears it when it raises the alarm anew)."""
    return state == RAISED and acknowledged_at is not None


async def load_alarms(conn: AsyncConnection, plot_type_ids: Iterable[int]) -> dict[int, PlotAlarm]:
    """The plot types' alarm states (``acknowledged`` where a crew member acknowledged)."""
    ids = sorted(set(plot_type_ids))
    stmt = sa.select(alarm_states_t).where(alarm_states_t.c.plot_type_id.in_(ids))
    out: dict[int, PlotAlarm] = {}
    for row in (await conn.execute(stmt)).mappings():
        values = dict(row)
        values["recent"] = _window(values.get("recent"))
        if acknowledged(values["state"], values["acknowledged_at"]):
            values["state"] = ACKNOWLEDGED
        out[row["plot_type_id"]] = PlotAlarm(**values)
    return out


def _meaning(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what changes with every image (which image, when)."""
    return {k: v for k, v in row.items() if k not in ("last_order_id", "run_number", "updated_at")}


def _window(stored: Any) -> list[int]:
    """A stored window, read leniently: a value that is none of the three counts as OTHER
    (a hand-edited row must not stop the keeper's writes)."""
    if not isinstance(stored, list):
        return []
    return [v if v in (OTHER, UNCONFIRMED, CONFIRMED) else OTHER for v in stored]


class AlarmBook:
    """The plot types' alarm states, read on first use and kept from batch to batch.

    The keeper alone decides the states, so a clear alarm it committed is what the table
    holds. The API's one change, an acknowledgement, applies to a raised alarm only: a raised
    (or acknowledged) alarm is read again for every batch that sees its plot type. Every
    ``refresh_seconds`` (another keeper replica, a hand edit) the book reads again every
    state it holds, a chunk of plot types a statement (forgetting them made each plot
    type's next image read its own: at a trickle, nearly every image for ten minutes);
    after a failed write it forgets everything.
    """

    def __init__(self, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self._alarms: dict[int, PlotAlarm | None] = {}  # None: no alarm_states row yet
        self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        """Forget every state: the next batches read theirs again."""
        self._alarms = {}
        self._loaded_at = time.monotonic()

    async def load(
        self, conn: AsyncConnection, plot_type_ids: Iterable[int]
    ) -> dict[int, PlotAlarm]:
        """The plot types' alarm states (``load_alarms`` through ``conn`` for those not held,
        or not clear). They are the book's own: the batch steps them in place, so a batch
        that fails must ``invalidate`` the book, and one that commits hands them back
        (``committed``)."""
        ids = set(plot_type_ids)
        fresh: set[int] = set()
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            fresh = set(self._alarms) | ids
            everything = sorted(fresh)
            read_all: dict[int, PlotAlarm] = {}
            for start in range(0, len(everything), REFRESH_CHUNK):
                chunk = everything[start : start + REFRESH_CHUNK]
                read_all.update(await load_alarms(conn, chunk))
            self._alarms = {pid: read_all.get(pid) for pid in everything}
            self._loaded_at = time.monotonic()
        held = self._alarms
        wanted = [
            pid for pid in ids if pid not in fresh and (pid not in held or _not_clear(held[pid]))
        ]
        if wanted:
            read = await load_alarms(conn, wanted)
            held.update({pid: read.get(pid) for pid in wanted})
        return {pid: a for pid in ids if (a := held[pid]) is not None}

    def committed(self, alarms: Mapping[int, PlotAlarm]) -> None:
        """Hold the states a committed batch left (as ``decide`` stored them; one that never
        counted an image has no row)."""
        for pid, alarm in alarms.items():
            alarm.raised_now = False  # the acknowledgement it reset is stored now
            self._alarms[pid] = alarm if alarm.updated_at is not None else None


def _not_clear(alarm: PlotAlarm | None) -> bool:
    return alarm is not None and alarm.state != CLEAR


async def decide(
    conn: AsyncConnection,
    sightings: Sequence[Sighting],
    rules: AlarmRules,
    beam: BeamStatus | None,
    now: datetime,
    book: AlarmBook | None = None,
) -> tuple[dict[str, Outcome], dict[int, PlotAlarm]]:
    """Run the sightings (in order) through their plot types' alarms and store the changed
    states in the caller's transaction; returns each sighting's outcome by order id, and
    the plot types' alarms as they stand now (for ``AlarmBook.committed``).

    ``beam`` is needed only when a sighting is a confirmed alarm verdict. The states come
    from ``book`` when given, else from the table.
    """
    if not sightings:
        return {}, {}
    ids = (s.plot_type_id for s in sightings)
    alarms = await (book.load(conn, ids) if book is not None else load_alarms(conn, ids))
    before = {pid: _meaning(a.row()) for pid, a in alarms.items()}
    outcomes: dict[str, Outcome] = {}
    for s in sightings:
        alarm = alarms.setdefault(s.plot_type_id, PlotAlarm(s.plot_type_id))
        outcomes[s.order_id] = alarm.step(s, rules, beam, now)
    # A plot type that stays Good changes nothing worth a write once its window is full.
    changed = [
        a.row()
        for pid, a in alarms.items()
        if a.updated_at is not None and before.get(pid) != _meaning(a.row())
    ]
    # One statement per column set (rows raised anew also reset the acknowledgement).
    for raised in (False, True):
        rows = [r for r in changed if ("acknowledged_at" in r) == raised]
        await upsert(conn, alarm_states_t, rows, ["plot_type_id"])
    return outcomes, alarms


@dataclass
class BatchAlarms:
    """What a batch did to its plot types' alarms, beyond the marks on its entries."""

    beam: BeamStatus | None = None  # looked up when the batch held a confirmed alarm verdict
    events: Counter[str] = field(default_factory=Counter)  # raise / clear
    suppressed: Counter[str] = field(default_factory=Counter)  # by reason (beam_off...)
    states: dict[int, PlotAlarm] = field(default_factory=dict)  # as stored, by plot type id


async def mark_alarms(
    conn: AsyncConnection,
    entries: Sequence[Entry],
    rules: AlarmRules,
    gate: BeamGate,
    now: datetime,
    book: AlarmBook | None = None,
) -> BatchAlarms:
    """Run a batch's images through their plot types' alarms (``decide``), in the caller's
    transaction: mark each entry's beep and raise / clear event. The beam status is asked
    for only when the batch holds a confirmed alarm verdict; the states come from ``book``
    when given (see ``decide``).
    """
    sightings = []
    for e in entries:  # late arrivals too: every Bad counts, in the order recorded
        j = e.judgement
        value = CONFIRMED if j.alarm else UNCONFIRMED if j.alarm_label else OTHER
        order = e.report.order
        sightings.append(
            Sighting(
                e.order_id,
                e.plot_type.id,
                e.plot_type.name,
                order.run_number,
                j.status.value == "ok",
                value,
            )
        )
    out = BatchAlarms()
    if any(s.value == CONFIRMED for s in sightings):
        out.beam = await gate.status(conn)
    outcomes, out.states = await decide(conn, sightings, rules, out.beam, now, book)
    for e in entries:
        outcome = outcomes.get(e.order_id)
        if outcome is None:
            continue
        e.alarm, e.alarm_event = outcome.beep, outcome.event
        if outcome.event:
            out.events[outcome.event] += 1
        if outcome.suppressed:
            out.suppressed[outcome.suppressed] += 1
    return out


def beeps(entries: Iterable[Entry], beam: BeamStatus | None) -> list[Alarm]:
    """The alarms to raise for a committed batch: one per entry marked to beep."""
    alarms = []
    for e in entries:
        if not e.alarm:
            continue
        j = e.judgement
        order = e.report.order
        alarms.append(
            Alarm(
                order_id=e.order_id,
                plot_type=e.plot_type.name,
                run_period=order.run_period,
                run_number=order.run_number,
                chunk=order.chunk,
                verdict=j.verdict,
                confidence=j.confidence,
                threshold=j.thresholds[j.verdict],
                beam_current=beam.reading.beam_current if beam else None,
                model_id=e.model_id,
                image_path=e.image_path or e.live_image,
                heatmap_path=e.heatmap_path or e.live_heatmap,
                event="raise" if e.alarm_event == "raise" else "repeat",
                beam=beam.state if beam else "unknown",
                run_type=beam.reading.run_type if beam else "",
            )
        )
    return alarms


class AlarmDispatcher:
    """Raises committed alarms; runs the optional alarm command without blocking."""

    def __init__(self, metrics: KeeperMetrics, command: str, hall: str) -> None:
        self.metrics = metrics
        self.argv = shlex.split(command) if command.strip() else []
        self.hall = hall
        self._tasks: set[asyncio.Task[None]] = set()

    def raise_alarms(self, alarms: list[Alarm]) -> None:
        """Count, log and hand each beep to the alarm command (if one is configured)."""
        for alarm in alarms:
            payload = {"hall": self.hall, "raised_at": time.time(), **alarm.as_dict()}
            self.metrics.alarms.inc()
            log.warning(
                "alarm",
                extra={
                    "order_id": alarm.order_id,
                    "plot_type": alarm.plot_type,
                    "run_number": alarm.run_number,
                    "chunk": alarm.chunk,
                    "verdict": alarm.verdict,
                    "confidence": alarm.confidence,
                    "beam_current": alarm.beam_current,
                    "event": alarm.event,
                },
            )
            if not self.argv:
                continue
            if len(self._tasks) >= MAX_RUNNING_COMMANDS:
                log.error(
                    "alarm command skipped: too many still running",
                    extra={"order_id": alarm.order_id},
                )
                continue
            task = asyncio.create_task(self._run(payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, payload: dict[str, object]) -> None:
        order_id = payload.get("order_id")
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.error("alarm command cannot start", extra={"order_id": order_id, "error": str(exc)})
            return
        try:
            _, err = await asyncio.wait_for(
                proc.communicate(json.dumps(payload).encode()), COMMAND_TIMEOUT_SECONDS
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("alarm command timed out", extra={"order_id": order_id})
            return
        if proc.returncode != 0:
            log.error(
                "alarm command failed",
                extra={
                    "order_id": order_id,
                    "returncode": proc.returncode,
                    "stderr": err.decode(errors="replace")[-500:],
                },
            )

    async def close(self) -> None:
        """Wait a little for running alarm commands, then leave them be."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT_SECONDS)
