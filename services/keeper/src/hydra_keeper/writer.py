"""The batch writer: one transaction records a whole batch of reports.

Per batch, a fixed number of statements whatever its size: look up the order ids already
recorded (a replay changes nothing), read the plot types' current state (run_time) to mark
transitions, pick the images to keep, write their files, then bulk-insert plots,
run_history and monitoring_log rows, upsert run_time, add the stage times to
the Status page's hourly figures (``stage_hourly``), and commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hydra.v1 import report_pb2
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hydra_common.beam import BeamSettings, BeamStatus
from hydra_common.db.schema import MonitoringLog, Plot, RunHistory, RunTime, StageHourly, utcnow
from hydra_common.logs import get_logger
from hydra_common.stagestats import hourly_rows
from hydra_common.uncertainty import margin
from hydra_keeper import shadow, storage
from hydra_keeper.alarms import (
    CONFIRMED,
    OTHER,
    UNCONFIRMED,
    Alarm,
    AlarmRules,
    Sighting,
    decide,
)
from hydra_keeper.beam import BeamGate, DatabaseBeam
from hydra_keeper.dbutil import add_counts, upsert
from hydra_keeper.masks import MaskBook
from hydra_keeper.reference import PlotTypeInfo, ReferenceCache
from hydra_keeper.verdicts import Judgement, judge, stage_seconds

log = get_logger(__name__)
# Replaced live files stay this long: a page that was just told about one can still load it.
LIVE_FILE_GRACE_SECONDS = 60.0
clock = time.monotonic  # what the grace is measured with (a test turns it by hand)
FILE_WRITERS = 8  # threads writing a batch's image files (their fsyncs overlap)

run_history_t = RunHistory.__table__
run_time_t = RunTime.__table__
monitoring_log_t = MonitoringLog.__table__
plots_t = Plot.__table__
stage_hourly_t = StageHourly.__table__

# SQL engines cap bound parameters per statement; lookups by id go in chunks this size.
_IN_CHUNK = 500


@dataclass(slots=True)
class _State:
    """A plot type's latest inference (its run_time row)."""

    order_id: str
    verdict: str
    confirmed: bool
    run_number: int
    chunk: int
    image_path: str = ""
    heatmap_path: str | None = None


@dataclass(slots=True)
class _Entry:
    """One new report on its way into the database."""

    report: report_pb2.Report
    order_id: str
    plot_type: PlotTypeInfo
    model_id: int | None
    judgement: Judgement
    newest: bool = False
    transition_kind: str = ""
    alarm: bool = False  # beeps (raised, or repeated while raised)
    alarm_event: str = ""  # "raise" or "clear": the monitoring log records it
    candidate: bool = False
    kept: str = ""
    ext: str = "png"
    image_path: str | None = None
    heatmap_path: str | None = None
    live_image: str = ""
    live_heatmap: str | None = None


@dataclass
class BatchResult:
    """What one committed batch did."""

    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    verdicts: Counter[tuple[str, bool]] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    alarms: list[Alarm] = field(default_factory=list)
    stale_files: list[str] = field(default_factory=list)
    beam_on: int | None = None  # 1/0/-1 when this batch looked at the beam
    beam_current: float | None = None
    files_skipped: Counter[str] = field(default_factory=Counter)  # by reason (disk_full...)
    alarm_events: Counter[str] = field(default_factory=Counter)  # raise / clear
    suppressed: Counter[str] = field(default_factory=Counter)  # by reason (beam_off...)

    def merge(self, other: BatchResult) -> None:
        """Add another result's figures to this one."""
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.verdicts.update(other.verdicts)
        self.kept.update(other.kept)
        self.files_skipped.update(other.files_skipped)
        self.alarm_events.update(other.alarm_events)
        self.suppressed.update(other.suppressed)
        self.alarms.extend(other.alarms)
        self.stale_files.extend(other.stale_files)
        if other.beam_on is not None:
            self.beam_on = other.beam_on
            self.beam_current = other.beam_current


def sampled(order_id: str, collect_percent: float) -> bool:
    """Whether the unbiased sample takes this order, with probability collect_percent / 100.

    Drawn from a hash of the order id rather than a random generator, so a report replayed
    after a failed commit makes the same choice (and writes the same files).
    """
    if collect_percent <= 0:
        return False
    if collect_percent >= 100:
        return True
    digest = hashlib.blake2b(order_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100 < collect_percent


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


# MySQL errors about a value itself (too long, out of range, not a valid value): the same
# report fails the same way every time. "Unknown database" and the like are transient.
_DATA_ERRORS = {1264, 1265, 1292, 1366, 1406}


def refused_for_good(exc: DBAPIError) -> bool:
    """True when the database refuses the data itself, so retrying cannot help."""
    if isinstance(exc, IntegrityError):
        return True
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    return len(args) > 0 and args[0] in _DATA_ERRORS


class BatchWriter:
    """Records batches of reports in single transactions (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        storage_root: Path,
        reference: ReferenceCache,
        beam_current_threshold: float = 1.0,
        default_threshold: float = 0.5,
        *,
        beam: BeamGate | None = None,
        alarm_rules: AlarmRules | None = None,
        keep_margin_below: float = 0.0,
        mask_accept_fraction: float = 0.6,
    ) -> None:
        self.engine = engine
        self.storage_root = storage_root
        self._pool: ThreadPoolExecutor | None = None  # made on first use
        self._stale: deque[tuple[float, list[str]]] = deque()  # (due, replaced live files)
        self.reference = reference
        # Without a gate: run conditions from the database, this threshold, the defaults.
        self.beam = beam or DatabaseBeam(
            BeamSettings(beam_current_threshold=beam_current_threshold)
        )
        self.alarm_rules = alarm_rules or AlarmRules()
        self.default_threshold = default_threshold
        self.keep_margin_below = keep_margin_below  # 0: the uncertainty rule is off
        # Experts' masks of accepted problems (hydra_keeper.masks), re-read like thresholds.
        self.masks = MaskBook(reference.refresh_seconds, mask_accept_fraction)

    async def write(self, reports: Sequence[report_pb2.Report]) -> BatchResult:
        """Record reports durably; returns once committed. Raises on a database error.

        Reports whose order id is already recorded, or repeated within the batch, change
        nothing. When a concurrent writer races us to an order id (IntegrityError), the
        batch is redone one report at a time.
        """
        unique: dict[str, report_pb2.Report] = {}
        for r in reports:
            unique.setdefault(r.order.order_id, r)
        if self.reference.needs_refresh(unique.values()):
            async with self.engine.begin() as conn:
                await self.reference.ensure(conn, unique.values())
        try:
            result = await self._write(unique)
        except DBAPIError as exc:
            if not refused_for_good(exc):
                raise  # the database is down or busy: the batch is retried whole
            log.warning("integrity or data error in batch; recording one report at a time")
            result = BatchResult()
            for oid, report in unique.items():
                result.merge(await self._write_one(oid, report))
        result.duplicates += len(reports) - len(unique)
        return result

    async def remove_stale(self, result: BatchResult) -> None:
        """Delete live files that committed batches replaced, once ``LIVE_FILE_GRACE_SECONDS``
        have passed: a Run page told about the old file a moment ago can still load it."""
        now = clock()
        if result.stale_files:
            self._stale.append((now + LIVE_FILE_GRACE_SECONDS, list(result.stale_files)))
        due: list[str] = []
        while self._stale and self._stale[0][0] <= now:
            due += self._stale.popleft()[1]
        if due:
            await asyncio.to_thread(self._remove_files, due)

    async def remove_all_stale(self) -> None:
        """At stop: delete every replaced live file still waiting out its grace."""
        due = [rel for _, rels in self._stale for rel in rels]
        self._stale.clear()
        if due:
            await asyncio.to_thread(self._remove_files, due)

    def _remove_files(self, rels: list[str]) -> None:
        for rel in rels:
            storage.remove_quietly(self.storage_root, rel)

    async def _write_one(self, oid: str, report: report_pb2.Report) -> BatchResult:
        try:
            return await self._write({oid: report})
        except DBAPIError as exc:
            if not refused_for_good(exc):
                raise
            async with self.engine.connect() as conn:
                exists = await conn.scalar(
                    sa.select(run_history_t.c.id).where(run_history_t.c.order_id == oid)
                )
            if exists is not None:
                return BatchResult(duplicates=1)
            # Not a replay: the report itself cannot be stored (e.g. a row it refers to was
            # deleted). Retrying would block its stream forever, so it is acknowledged.
            log.error(
                "report rejected by the database",
                extra={"order_id": oid, "error": str(exc.orig)[:300]},
            )
            self.reference.invalidate()
            return BatchResult(rejected=1)

    async def _write(self, unique: dict[str, report_pb2.Report]) -> BatchResult:
        result = BatchResult()
        now = utcnow()
        now_ns = int(now.timestamp() * 1e9)
        # Reads first, in a short transaction of their own: which reports are new, the plot
        # types' states, what to keep. Then the files, in parallel and with no transaction
        # open (no lock waits on the disk); then every write in one transaction. Files are
        # still on disk before the commit that refers to them. A writer racing us to an
        # order id between the two fails on its unique key, and the batch goes one by one.
        async with self.engine.connect() as conn:
            existing = await self._existing(conn, list(unique))
            result.duplicates = len(existing)
            entries = self._entries(unique, existing)
            if not entries:
                return result
            await self.masks.apply(conn, entries, now)  # Bad inside a mask: Accepted
            states = await self._states(conn, {e.plot_type.id for e in entries})
            await self._choose_kept(conn, entries)
        stale = self._mark_transitions(entries, states)
        result.files_skipped = await asyncio.to_thread(self._write_files, entries)
        shadow_rows = await asyncio.to_thread(shadow.rows, self.storage_root, entries)
        async with self.engine.begin() as conn:
            beam = await self._mark_alarms(conn, entries, result, now)
            plot_ids = await self._insert_plots(conn, entries)
            history = await self._insert_history(conn, entries, plot_ids, now, now_ns)
            await self._add_stage_hours(conn, history)
            history_ids = await self._history_ids(
                conn,
                [e.order_id for e in entries if e.newest or e.judgement.logged or e.alarm_event],
            )
            await self._insert_log(conn, entries, history_ids, now)
            await self._upsert_run_time(conn, entries, history_ids, now)
            await shadow.insert(conn, shadow_rows)  # apart from the verdicts (hydra_keeper.shadow)
        # Committed: only now do the figures count and the replaced live files go.
        result.recorded = len(entries)
        for e in entries:
            result.verdicts[(e.judgement.verdict, e.judgement.confirmed)] += 1
            if e.kept:
                result.kept[e.kept] += 1
        result.stale_files = stale
        result.alarms = self._alarms(entries, beam)
        return result

    async def _existing(self, conn: AsyncConnection, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for part in _chunks(ids):
            rows = await conn.execute(
                sa.select(run_history_t.c.order_id).where(run_history_t.c.order_id.in_(part))
            )
            found.update(rows.scalars())
        return found

    def _entries(self, unique: dict[str, report_pb2.Report], existing: set[str]) -> list[_Entry]:
        ref = self.reference
        default = self.default_threshold
        alarm_labels = ref.alarm_labels
        entries = []
        for oid, r in unique.items():
            if oid in existing:
                continue
            thresholds = ref.model_thresholds(r.model_id) if r.model_id else None
            model_id = r.model_id if thresholds is not None else None
            j = judge(r, thresholds or {}, alarm_labels, default)
            entries.append(_Entry(r, oid, ref.plot_types[r.order.plot_type], model_id, j))
        # Order ids are time-ordered: sorting replays the plot types' histories in order.
        entries.sort(key=lambda e: e.order_id)
        return entries

    async def _states(self, conn: AsyncConnection, plot_type_ids: set[int]) -> dict[int, _State]:
        c = run_time_t.c
        rows = await conn.execute(
            sa.select(
                c.plot_type_id,
                c.order_id,
                c.verdict,
                c.confirmed,
                c.run_number,
                c.chunk,
                c.image_path,
                c.heatmap_path,
            ).where(c.plot_type_id.in_(list(plot_type_ids)))
        )
        return {row[0]: _State(*row[1:]) for row in rows}

    def _mark_transitions(self, entries: list[_Entry], states: dict[int, _State]) -> list[str]:
        """Mark transitions and each plot type's newest entry; returns live files replaced.

        A report older than its plot type's latest (a late arrival) neither becomes the
        current state nor counts as a transition: it tells nothing about the present.
        """
        newest: dict[int, _Entry] = {}
        stale: list[str] = []
        for e in entries:
            pid = e.plot_type.id
            prev = states.get(pid)
            order = e.report.order
            j = e.judgement
            if prev is not None and e.order_id <= prev.order_id:
                continue
            kinds = []
            if prev is None:
                kinds.append("first")
            elif prev.verdict != j.verdict:
                kinds.append("verdict")
            elif prev.confirmed != j.confirmed:
                kinds.append("confirmation")
            if (
                prev is not None
                and order.chunk >= 0
                and prev.chunk >= 0
                and prev.run_number == order.run_number
                and order.chunk != prev.chunk + 1
            ):
                kinds.append("chunk_skip")
            e.transition_kind = "+".join(kinds)
            states[pid] = _State(e.order_id, j.verdict, j.confirmed, order.run_number, order.chunk)
            if prev is not None and pid not in newest:
                # The stored state's live files go once this batch replaces it.
                if prev.image_path.startswith("live/"):
                    stale.append(prev.image_path)
                if prev.heatmap_path and prev.heatmap_path.startswith("live/"):
                    stale.append(prev.heatmap_path)
            if pid in newest:
                newest[pid].newest = False
            e.newest = True
            newest[pid] = e
        return stale

    async def _mark_alarms(
        self, conn: AsyncConnection, entries: list[_Entry], result: BatchResult, now: datetime
    ) -> BeamStatus | None:
        """Run the batch's images through their plot types' alarms (``hydra_keeper.alarms``):
        mark the beeps and the raise / clear events. Returns the beam status when the batch
        needed it (a confirmed alarm verdict), which also goes into ``result``.
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
        beam = None
        if any(s.value == CONFIRMED for s in sightings):
            beam = await self.beam.status(conn)
            result.beam_on, result.beam_current = beam.beam_on, beam.reading.beam_current
        outcomes = await decide(conn, sightings, self.alarm_rules, beam, now)
        for e in entries:
            outcome = outcomes.get(e.order_id)
            if outcome is None:
                continue
            e.alarm, e.alarm_event = outcome.beep, outcome.event
            if outcome.event:
                result.alarm_events[outcome.event] += 1
            if outcome.suppressed:
                result.suppressed[outcome.suppressed] += 1
        return beam

    def _alarms(self, entries: list[_Entry], beam: BeamStatus | None) -> list[Alarm]:
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

    async def _choose_kept(self, conn: AsyncConnection, entries: list[_Entry]) -> None:
        """Keep every confirmed alarm verdict and every unconfirmed one, every uncertain one
        (a margin below ``keep_margin_below``, when set), and a sample.

        The unbiased sample (at the plot type's collect percent, over OK and NoModel
        reports) never takes a second image of the same plot type, run and chunk.
        """
        candidates: list[_Entry] = []
        for e in entries:
            e.candidate = False
            if not e.report.order.image:
                continue
            j = e.judgement
            if j.logged or j.accepted_from:
                e.kept = "bad" if j.confirmed else "unconfirmed"
            elif j.status.value == "ok" and self._uncertain(j.weights):
                e.kept = "uncertain"
            elif j.status.value != "error" and sampled(e.order_id, e.plot_type.collect_percent):
                e.candidate = True
                candidates.append(e)
        if not candidates:
            return
        keys = {
            (e.plot_type.id, e.report.order.run_number, e.report.order.chunk) for e in candidates
        }
        taken = await self._kept_keys(conn, list(keys))
        for e in entries:
            order = e.report.order
            key = (e.plot_type.id, order.run_number, order.chunk)
            if e.kept:
                taken.add(key)
            elif e.candidate and key not in taken:
                e.kept = "unbiased"
                taken.add(key)

    def _uncertain(self, weights: dict[str, float]) -> bool:
        """Whether the keeping rule for uncertain images takes these weights."""
        m = margin(weights) if self.keep_margin_below > 0 else None
        return m is not None and m < self.keep_margin_below

    async def _kept_keys(
        self, conn: AsyncConnection, keys: list[tuple[int, int, int]]
    ) -> set[tuple[int, int, int]]:
        c = plots_t.c
        found: set[tuple[int, int, int]] = set()
        for part in _chunks(keys):
            rows = await conn.execute(
                sa.select(c.plot_type_id, c.run_number, c.chunk)
                .where(sa.tuple_(c.plot_type_id, c.run_number, c.chunk).in_(part))
                .distinct()
            )
            found.update((a, b, d) for a, b, d in rows)
        return found

    def _write_files(self, entries: list[_Entry]) -> Counter[str]:
        """Write kept and live files (in a worker thread: Pillow and the disk block).

        A file that cannot be written (a full disk above all) costs only the file: the
        verdict is still recorded and acknowledged, the image is not kept (and not counted
        as kept), and the reason is counted. Keeping resumes by itself when space returns.
        """
        todo = [e for e in entries if e.report.order.image and (e.kept or e.newest)]
        if len(todo) > 1:
            # In parallel: each kept file waits for its fsync, and those waits overlap.
            reasons = list(self._file_pool().map(self._store_entry_files, todo))
        else:
            reasons = [self._store_entry_files(e) for e in todo]
        return Counter(r for r in reasons if r)

    def _file_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(FILE_WRITERS, thread_name_prefix="keeper-files")
        return self._pool

    def _store_entry_files(self, e: _Entry) -> str:
        """Write one entry's files; '' or, when they cannot be written, the reason."""
        try:
            self._write_entry_files(e)
            return ""
        except OSError as exc:
            reason = storage.storage_problem(exc)
            log.warning(
                "image not stored",
                extra={"order_id": e.order_id, "reason": reason, "error": str(exc)[:200]},
            )
            for rel in (e.image_path, e.heatmap_path):
                if rel:
                    storage.remove_quietly(self.storage_root, rel)
            e.kept, e.image_path, e.heatmap_path = "", None, None
            e.live_image, e.live_heatmap = "", None
            return reason

    def _write_entry_files(self, e: _Entry) -> None:
        root = self.storage_root
        order = e.report.order
        if not order.image or not (e.kept or e.newest):
            return
        name = e.plot_type.name
        e.ext = storage.image_ext(order.source_path, order.image, e.plot_type.file_type)
        heat_png = None
        if e.report.HasField("heat_map") and e.report.heat_map.values:
            heat_png = storage.render_heatmap(e.report.heat_map, storage.image_size(order.image))
        if e.kept:
            e.image_path = storage.kept_image_path(name, e.order_id, e.ext)
            storage.write_atomic(root, e.image_path, order.image, durable=True)
            if heat_png is not None:
                e.heatmap_path = storage.kept_heatmap_path(name, e.order_id)
                storage.write_atomic(root, e.heatmap_path, heat_png, durable=True)
        if e.newest:
            e.live_image = storage.live_image_path(name, e.order_id, e.ext)
            storage.write_atomic(root, e.live_image, order.image, durable=False)
            if heat_png is not None:
                e.live_heatmap = storage.live_heatmap_path(name, e.order_id)
                storage.write_atomic(root, e.live_heatmap, heat_png, durable=False)

    async def _insert_plots(self, conn: AsyncConnection, entries: list[_Entry]) -> dict[str, int]:
        kept = [e for e in entries if e.kept and e.image_path]
        if not kept:
            return {}
        rows = []
        for e in kept:
            order = e.report.order
            rows.append(
                {
                    "plot_type_id": e.plot_type.id,
                    "run_period": order.run_period,
                    "run_number": order.run_number,
                    "chunk": order.chunk,
                    "image_path": e.image_path,
                    "heatmap_path": e.heatmap_path,
                    "order_id": e.order_id,
                    "kept_reason": e.kept,
                    "source_path": order.source_path[:1024],
                    "file_time": _file_time(order.stages.file_ns),
                    "created_at": utcnow(),
                }
            )
        await conn.execute(sa.insert(plots_t), rows)
        ids = [e.order_id for e in kept]
        found = await conn.execute(
            sa.select(plots_t.c.order_id, plots_t.c.id).where(plots_t.c.order_id.in_(ids))
        )
        return {oid: pid for oid, pid in found}

    async def _insert_history(
        self,
        conn: AsyncConnection,
        entries: list[_Entry],
        plot_ids: dict[str, int],
        now: datetime,
        now_ns: int,
    ) -> list[dict[str, Any]]:
        rows = []
        for e in entries:
            order = e.report.order
            j = e.judgement
            rows.append(
                {
                    "order_id": e.order_id,
                    "plot_type_id": e.plot_type.id,
                    "run_period": order.run_period,
                    "run_number": order.run_number,
                    "chunk": order.chunk,
                    "status": j.status,
                    "model_id": e.model_id,
                    "verdict": j.verdict,
                    "confidence": j.confidence,
                    "confirmed": j.confirmed,
                    "weights": j.weights,
                    "thresholds": j.thresholds,
                    "stage_seconds": stage_seconds(order.stages, now_ns),
                    "error": j.error[:1024],
                    "source_path": order.source_path[:1024],
                    "plot_id": plot_ids.get(e.order_id),
                    "predictor_id": e.report.predictor_id[:128],
                    "file_time": _file_time(order.stages.file_ns),
                    "created_at": now,
                }
            )
        await conn.execute(sa.insert(run_history_t), rows)
        return rows

    async def _add_stage_hours(self, conn: AsyncConnection, history: list[dict[str, Any]]) -> None:
        """Add the batch's stage times to the Status page's hourly figures (same commit)."""
        rows = hourly_rows((r["created_at"], r["run_number"], r["stage_seconds"]) for r in history)
        await add_counts(conn, stage_hourly_t, rows, ["hour", "run_number", "stage", "bin"])

    async def _history_ids(self, conn: AsyncConnection, order_ids: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        c = run_history_t.c
        for part in _chunks(order_ids):
            rows = await conn.execute(sa.select(c.order_id, c.id).where(c.order_id.in_(part)))
            out.update({oid: rid for oid, rid in rows})
        return out

    async def _insert_log(
        self,
        conn: AsyncConnection,
        entries: list[_Entry],
        history_ids: dict[str, int],
        now: datetime,
    ) -> None:
        rows = []
        for e in entries:
            j = e.judgement
            if not (j.logged or e.alarm_event):
                continue
            order = e.report.order
            rows.append(
                {
                    "run_history_id": history_ids[e.order_id],
                    "plot_type_id": e.plot_type.id,
                    "run_number": order.run_number,
                    "chunk": order.chunk,
                    "verdict": j.verdict,
                    "confirmed": j.confirmed,
                    "transition": bool(e.transition_kind),
                    "transition_kind": e.transition_kind,
                    "alarm": e.alarm,
                    "event": e.alarm_event,
                    "created_at": now,
                }
            )
        if rows:
            await conn.execute(sa.insert(monitoring_log_t), rows)

    async def _upsert_run_time(
        self,
        conn: AsyncConnection,
        entries: list[_Entry],
        history_ids: dict[str, int],
        now: datetime,
    ) -> None:
        rows = []
        for e in entries:
            if not e.newest:
                continue
            order = e.report.order
            j = e.judgement
            rows.append(
                {
                    "plot_type_id": e.plot_type.id,
                    "run_history_id": history_ids[e.order_id],
                    "order_id": e.order_id,
                    "run_period": order.run_period,
                    "run_number": order.run_number,
                    "chunk": order.chunk,
                    "verdict": j.verdict,
                    "confidence": j.confidence,
                    "confirmed": j.confirmed,
                    "model_id": e.model_id,
                    "image_path": e.live_image,
                    "heatmap_path": e.live_heatmap,
                    "updated_at": now,
                }
            )
        await upsert(conn, run_time_t, rows, ["plot_type_id"])


def _file_time(file_ns: int) -> datetime | None:
    return datetime.fromtimestamp(file_ns / 1e9, UTC) if file_ns > 0 else None
