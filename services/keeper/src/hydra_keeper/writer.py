"""The batch writer: one batch of reports, all its rows written in one transaction.

It orchestrates a batch's steps, each in a module of its own, with a fixed number of
statements per batch whatever its size. In a short read-only transaction: look up the order
ids already recorded (``records``; a replay changes nothing), apply the experts' masks
(``masks``), take the plot types' current states (``transitions``) and pick the images to
keep (``keeping``). With no transaction open: mark the transitions and write the files
(``files``, in parallel; always before the commit that refers to them). Then, in one
transaction: run the alarms (``alarms``), insert the rows (``records``: plots,
run_history, stage_hourly, monitoring_log, run_time) and the shadow verdicts (``shadow``),
and commit. Both transactions use one connection.

What the keeper alone writes, the plot types' current and alarm states, it keeps in memory
from batch to batch (``transitions.StateBook``, ``alarms.AlarmBook``), as it keeps what it
only reads (``reference``, masks), each read again every refresh: a one-report commit (a
hall's trickle) then sends one read, of the recorded order ids, and its inserts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.v1 import report_pb2
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from hydra_common.beam import BeamSettings
from hydra_common.db.schema import utcnow
from hydra_common.logs import get_logger
from hydra_keeper import records, shadow
from hydra_keeper.alarms import Alarm, AlarmBook, AlarmRules, beeps, mark_alarms
from hydra_keeper.beam import BeamGate, DatabaseBeam
from hydra_keeper.entries import new_entries
from hydra_keeper.files import BatchFiles
from hydra_keeper.keeping import KeepingPolicy
from hydra_keeper.masks import MaskBook
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.transitions import StateBook, mark_transitions

log = get_logger(__name__)

# How long the books of the states the keeper writes are kept before they are read again.
# Its own commits keep them right in between; the refresh is for what no commit of its own
# tells it (another keeper replica, a hand edit). A refresh reads every held state again in
# bulk (a statement per 500 plot types), so its cost does not depend on how often each plot
# type's images come.
STATE_REFRESH_SECONDS = 600.0


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
        self.files = BatchFiles(storage_root)
        self.reference = reference
        # Without a gate: run conditions from the database, this threshold, the defaults.
        self.beam = beam or DatabaseBeam(
            BeamSettings(beam_current_threshold=beam_current_threshold)
        )
        self.alarm_rules = alarm_rules or AlarmRules()
        self.default_threshold = default_threshold
        self.keeping = KeepingPolicy(keep_margin_below)
        # Experts' masks of accepted problems (hydra_keeper.masks), re-read like thresholds.
        self.masks = MaskBook(reference.refresh_seconds, mask_accept_fraction)
        # The plot types' current and alarm states: the keeper writes them, so it keeps them
        # in memory instead of reading them for every batch.
        self.states = StateBook(STATE_REFRESH_SECONDS)
        self.alarm_states = AlarmBook(STATE_REFRESH_SECONDS)

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

    def _forget_states(self) -> None:
        """After a failed write the tables may hold more (or less) than the books: the
        next batch reads its states again."""
        self.states.invalidate()
        self.alarm_states.invalidate()

    async def remove_stale(self, result: BatchResult) -> None:
        """Delete live files that committed batches replaced, once
        ``files.LIVE_FILE_GRACE_SECONDS`` have passed: a Run page told about the old file a
        moment ago can still load it."""
        await self.files.remove_stale(result.stale_files)

    async def remove_all_stale(self) -> None:
        """At stop: delete every replaced live file still waiting out its grace."""
        await self.files.remove_all_stale()

    async def _write_one(self, oid: str, report: report_pb2.Report) -> BatchResult:
        try:
            return await self._write({oid: report})
        except DBAPIError as exc:
            if not refused_for_good(exc):
                raise
            async with self.engine.connect() as conn:
                exists = await records.existing(conn, [oid])
            if exists:
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
        # Reads first, in a short transaction of their own: which reports are new, the plot
        # types' states, what to keep. Then the files, in parallel and with no transaction
        # open (no lock waits on the disk); then every write in one transaction. Files are
        # still on disk before the commit that refers to them. A writer racing us to an
        # order id between the two fails on its unique key, and the batch goes one by one.
        # One connection serves both transactions (one check-out and ping per batch).
        async with self.engine.connect() as conn:
            existing = await records.existing(conn, list(unique))
            result.duplicates = len(existing)
            entries = new_entries(unique, existing, self.reference, self.default_threshold)
            if not entries:
                return result
            await self.masks.apply(conn, entries, now)  # Bad inside a mask: Accepted
            states = await self.states.states(conn, {e.plot_type.id for e in entries})
            await self.keeping.choose(conn, entries)
            await conn.rollback()  # the reads' transaction ends before the files
            stale = mark_transitions(entries, states)
            try:
                result.files_skipped = await self.files.write(entries)
                shadow_rows: list[dict[str, Any]] = []  # a worker thread only when needed
                if any(e.report.HasField("shadow") for e in entries):
                    shadow_rows = await asyncio.to_thread(shadow.rows, self.storage_root, entries)
                async with conn.begin():
                    alarms = await mark_alarms(
                        conn, entries, self.alarm_rules, self.beam, now, self.alarm_states
                    )
                    await records.insert(conn, entries, now)
                    await shadow.insert(conn, shadow_rows)  # apart from the verdicts
            except BaseException:
                self._forget_states()  # a commit that failed on its way back may have happened
                raise
        # Committed: only now do the books, the figures count and the replaced live files go.
        self.states.committed(entries)
        self.alarm_states.committed(alarms.states)
        result.recorded = len(entries)
        for e in entries:
            result.verdicts[(e.judgement.verdict, e.judgement.confirmed)] += 1
            if e.kept:
                result.kept[e.kept] += 1
        result.stale_files = stale
        beam = alarms.beam  # looked at only when the batch held a confirmed alarm verdict
        if beam is not None:
            result.beam_on, result.beam_current = beam.beam_on, beam.reading.beam_current
        result.alarm_events, result.suppressed = alarms.events, alarms.suppressed
        result.alarms = beeps(entries, beam)
        return result
