"""The feeder's intake: from files in the input directory to pending orders.

The scan loop rescans every ``rescan_seconds`` (quickly: only directories whose mtime
changed are read again; every ``full_rescan_seconds`` every file is stat'ed) and looks at once
at the files the watcher saw change, waits until each file held still, then judges the stable
ones in batches: naming, plot type, the ledger (a file fed before is not fed again), reading
and validating. A good file becomes a pending ledger row, then an order for the sender; a file
of an unknown or ignored plot type is skipped and left in place; a bad one is quarantined. No
bad file stops its batch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from hydra.v1.order_pb2 import InferenceOrder

from hydra_common.ids import uuid7
from hydra_common.logs import get_logger
from hydra_feeder.ledger import Ledger, LedgerEntry
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import ParsedName, Parser, same_file_type
from hydra_feeder.orders import PendingOrders, make_order
from hydra_feeder.plot_types import PlotTypes
from hydra_feeder.quarantine import quarantine
from hydra_feeder.requeue import Requeue
from hydra_feeder.scanner import (
    CLOCK_SKEW_SECONDS,
    FileStat,
    StabilityTracker,
    Walker,
    stat_file,
)
from hydra_feeder.settings import FeederSettings
from hydra_feeder.validate import SKIP_REASONS, Rejected, check_inside, read_and_validate
from hydra_feeder.watch import ScanRequests

log = get_logger(__name__)

MAX_SOURCE_PATH = 768  # fed_files.source_path
MAX_RUN_NUMBER = 2**63 - 1  # int64 in the order, BIGINT in the database
MAX_CHUNK = 2**31 - 1  # int32 in the order, INT in the database
MAX_RUN_PERIOD = 64  # run_history.run_period
MAX_PLOT_TYPE = 128  # plot_types.name
RETRY_SECONDS = 1.0  # pause after a batch failed (the database, most likely)

Candidate = tuple[str, FileStat, ParsedName]


@dataclass(frozen=True)
class Handled:
    """A file the feeder has dealt with, as it was then (a change makes it new again)."""

    stat: FileStat
    outcome: str  # "fed", or the reason it was not
    plot_type: str = ""


@dataclass(frozen=True)
class Unmoved:
    """A rejected file still in the input folder: its quarantine move failed."""

    stat: FileStat
    reason: str
    detail: str


class Intake:
    """Finds finished files, judges them, and records the good ones as pending orders."""

    def __init__(
        self,
        settings: FeederSettings,
        parse: Parser,
        ledger: Ledger,
        pending: PendingOrders,
        requests: ScanRequests,
        metrics: FeederMetrics,
    ) -> None:
        self._settings = settings
        self.root = settings.input_root
        self.quarantine_root = settings.quarantine_root
        self._parse = parse
        self._ledger = ledger
        self._pending = pending
        self._requests = requests
        self._metrics = metrics
        self._tracker = StabilityTracker(settings.stable_seconds)
        self._walker = Walker(self.root, self.quarantine_root)
        self._requeue = Requeue(self.root, settings.stable_seconds, settings.requeue_seconds)
        self.handled: dict[str, Handled] = {}
        # Rejected files that could not be moved (the quarantine's volume full): tried again
        # at every rescan, so none stays in the input folder until the feeder restarts.
        self.unmoved: dict[str, Unmoved] = {}
        self._plot_types: PlotTypes = {}
        # A file modified after this (the feeder's start, less the file server's clock skew)
        # is taken for new, its ledger row written without a look first: one statement a
        # file at a trickle, not two. The ledger checks anyway (Ledger.record).
        self._new_after_ns = time.time_ns() - int(CLOCK_SKEW_SECONDS * 1e9)

    def use_plot_types(self, types: PlotTypes) -> None:
        """Judge files by these plot types from now on; files skipped for a plot type that is
        now active are looked at again."""
        self._plot_types = types
        for rel, handled in list(self.handled.items()):
            info = types.get(handled.plot_type)
            if handled.outcome in SKIP_REASONS and info is not None and not info.ignored:
                del self.handled[rel]
                # A quick rescan reports only changed files: this one is looked at now.
                self._requests.touch(rel)
        self._requests.wake()

    def forget(self, rel: str) -> None:
        """Judge this file afresh (it was rewritten after it was fed): looked at now, as a
        quick rescan would not report it."""
        self.handled.pop(rel, None)
        self._requests.touch(rel)
        self._requests.wake()

    # --- finding stable files --------------------------------------------------------------

    def _observe(self, rel: str, stat: FileStat, now: float) -> None:
        handled = self.handled.get(rel)
        if handled is not None:
            if handled.stat == stat:
                return  # dealt with, unchanged
            del self.handled[rel]  # rewritten: a new file as far as Hydra is concerned
        self._tracker.observe(rel, stat, now)

    def _stat_many(self, rels: set[str]) -> dict[str, FileStat]:
        found = {}
        for rel in rels:
            stat = stat_file(self.root / rel)
            if stat is not None:
                found[rel] = stat
        return found

    async def run(self) -> None:
        """Rescan, observe, and process files that held still long enough."""
        loop = asyncio.get_running_loop()
        next_rescan = next_full = 0.0
        while True:
            asked = self._requests.take_rescan()
            if asked or loop.time() >= next_rescan:
                # Files not yet stable, and rejected ones not moved yet, are stat'ed on every
                # rescan: a quick one would otherwise reuse their stat from the last listing.
                restat = self._tracker.paths()
                restat.update(self.unmoved)
                full = asked or loop.time() >= next_full
                scan = await asyncio.to_thread(self._walker.scan, full, restat)
                now = loop.time()
                if scan.full:
                    self._tracker.keep_only(scan.files)
                    for rel in [r for r in self.handled if r not in scan.files]:
                        del self.handled[rel]
                    next_full = now + self._settings.full_rescan_seconds
                else:
                    for rel in scan.gone:
                        self._tracker.forget(rel)
                        self.handled.pop(rel, None)
                for rel, stat in scan.files.items():
                    self._observe(rel, stat, now)
                if self.unmoved:
                    await self._quarantine_unmoved(scan.files)
                next_rescan = now + self._settings.rescan_seconds
            if len(self._requeue):
                for rel in await asyncio.to_thread(self._requeue.due, loop.time()):
                    self._metrics.requeued.inc()
                    log.warning("quarantined file was finished; put back", extra={"path": rel})
                    self._requests.touch(rel)
            touched = self._requests.take_touched()
            if touched:
                stats = await asyncio.to_thread(self._stat_many, touched)
                now = loop.time()
                for rel, stat in stats.items():
                    self._observe(rel, stat, now)
            await self._process_ready(loop.time())
            wait = next_rescan - loop.time()
            ready_at = self._tracker.next_ready()
            if ready_at is not None:
                # Until the first tracked file is due: a change to one wakes the loop anyway.
                wait = min(wait, ready_at - loop.time())
            if len(self._requeue):
                # The quarantine gives no events: its files are looked at every so often.
                wait = min(wait, max(self._settings.stable_seconds / 4, 0.05))
            await self._requests.wait(max(wait, 0.01))

    async def _process_ready(self, now: float) -> None:
        """Process the files that are stable now, a batch at a time."""
        ready = self._tracker.take_ready(now)
        size = self._settings.feeder_batch
        for i in range(0, len(ready), size):
            chunk = ready[i : i + size]
            try:
                await self._process(chunk)
            except Exception:
                # The database is down, most likely: look at these files again later.
                # Retrying is safe: files fed meanwhile are in the ledger, rejected ones
                # have moved away.
                log.exception("could not process files; retrying", extra={"files": len(chunk)})
                now = asyncio.get_running_loop().time()
                for rel, stat in ready[i:]:
                    if rel not in self.handled:
                        self._tracker.observe(rel, stat, now)
                await asyncio.sleep(RETRY_SECONDS)
                return

    # --- one batch of stable files ---------------------------------------------------------

    def _classify(self, rel: str, stat: FileStat) -> ParsedName | None:
        """Name and plot type checks; returns the parsed name when the file is to be read."""
        check_inside(self.root / rel, self.root)  # whatever its name: a link must not escape
        parsed = self._parse(rel)
        if parsed is None or len(rel) > MAX_SOURCE_PATH:
            raise Rejected("bad_name", "does not follow the naming convention")
        if problem := unrepresentable(rel, parsed):
            # Such a name cannot travel in an order or be stored: rejecting it here keeps it
            # from failing its whole batch over and over.
            raise Rejected("bad_name", problem)
        info = self._plot_types.get(parsed.plot_type)
        if info is None:
            self._skip(rel, stat, "unknown_plot_type", parsed.plot_type)
            return None
        if info.ignored:
            self._skip(rel, stat, "ignored_plot_type", parsed.plot_type)
            return None
        if not same_file_type(parsed.extension, info.file_type):
            raise Rejected(
                "bad_name", f".{parsed.extension} but {parsed.plot_type} is {info.file_type}"
            )
        return parsed

    async def _process(self, files: list[tuple[str, FileStat]]) -> None:
        """Check, record and queue one batch of stable files; a bad file never stops it."""
        candidates: list[Candidate] = []
        for rel, stat in files:
            try:
                parsed = self._classify(rel, stat)
            except Rejected as rejected:
                await self._reject(rel, stat, rejected.reason, rejected.detail)
                continue
            except Exception as exc:
                log.exception("file check failed", extra={"path": rel})
                await self._reject(rel, stat, "error", repr(exc))
                continue
            if parsed is not None:
                candidates.append((rel, stat, parsed))
        if not candidates:
            return
        known = await self._ledger.lookup(
            [rel for rel, stat, _ in candidates if stat.mtime_ns < self._new_after_ns]
        )
        todo = self._new_files(candidates, known)
        batch: list[tuple[LedgerEntry, InferenceOrder, ParsedName]] = []
        while todo:
            room = self._pending.room() - len(batch)
            if room <= 0:
                await self._commit(batch, known)
                batch = []
                await self._pending.wait_for_room()
                continue
            part, todo = todo[:room], todo[room:]
            # One worker-thread hop for the whole part, not one per file: the per-file hops
            # (and the GIL hand-overs between several worker threads) cost as much CPU as
            # reading the files.
            loaded = await asyncio.to_thread(self._load_many, part)
            for (rel, stat, parsed), outcome in zip(part, loaded, strict=True):
                order = await self._order_from(rel, stat, parsed, outcome)
                if order is not None:
                    batch.append(
                        (LedgerEntry(rel, stat.size, stat.mtime_ns, order.order_id), order, parsed)
                    )
        await self._commit(batch, known)

    def _new_files(
        self, candidates: list[Candidate], known: dict[str, LedgerEntry]
    ) -> list[Candidate]:
        """The candidates to feed: not fed before as they are now, and not too old."""
        max_age_s = self._settings.max_file_age_days * 86400
        oldest_ns = time.time_ns() - int(max_age_s * 1e9)
        todo: list[Candidate] = []
        for rel, stat, parsed in candidates:
            entry = known.get(rel)
            if entry and (entry.file_size, entry.file_mtime_ns) == (stat.size, stat.mtime_ns):
                # Fed before (a restart): done, or pending and re-sent on connect.
                self.handled[rel] = Handled(stat, "fed", parsed.plot_type)
                continue
            if entry is None and max_age_s > 0 and stat.mtime_ns < oldest_ns:
                # Older than the ledger remembers (retention prunes its done rows): feeding it
                # could feed it a second time.
                self._skip(rel, stat, "too_old", parsed.plot_type)
                continue
            todo.append((rel, stat, parsed))
        return todo

    def _load_many(self, files: list[Candidate]) -> list[bytes | Exception]:
        """Read and validate files (blocking: runs in a worker thread); an error per file."""
        s = self._settings
        out: list[bytes | Exception] = []
        for rel, _stat, parsed in files:
            started = time.perf_counter()
            try:
                out.append(
                    read_and_validate(
                        self.root / rel,
                        self.root,
                        parsed.extension,
                        s.max_file_bytes,
                        s.max_pixels,
                        s.max_image_pixels,
                    )
                )
            except Exception as exc:  # judged per file by _order_from
                out.append(exc)
            finally:
                self._metrics.read_seconds.observe(time.perf_counter() - started)
        return out

    async def read_one(self, rel: str, stat: FileStat, parsed: ParsedName) -> InferenceOrder | None:
        """Read and validate one file; None when it was rejected or changed meanwhile."""
        loaded = await asyncio.to_thread(self._load_many, [(rel, stat, parsed)])
        return await self._order_from(rel, stat, parsed, loaded[0])

    async def _order_from(
        self, rel: str, stat: FileStat, parsed: ParsedName, outcome: bytes | Exception
    ) -> InferenceOrder | None:
        """The order of a file read by ``_load_many``; None when it was rejected or changed."""
        if isinstance(outcome, Rejected):
            await self._reject(rel, stat, outcome.reason, outcome.detail, parsed.plot_type)
            return None
        if isinstance(outcome, FileNotFoundError):
            # Nothing to quarantine; counted so a hall that deletes files too early sees it.
            self._metrics.rejected.labels("vanished").inc()
            log.info("file vanished before it was read", extra={"path": rel, "reason": "vanished"})
            return None
        if isinstance(outcome, Exception):
            log.error(
                "file read failed",
                extra={"path": rel},
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )
            await self._reject(rel, stat, "error", repr(outcome), parsed.plot_type)
            return None
        data = outcome
        if len(data) != stat.size:
            # Written to since it looked stable: watch it again.
            now_stat = stat_file(self.root / rel)
            if now_stat is not None:
                self._tracker.observe(rel, now_stat, asyncio.get_running_loop().time())
            return None
        return make_order(uuid7(), rel, parsed, stat, data)

    async def _commit(
        self,
        batch: list[tuple[LedgerEntry, InferenceOrder, ParsedName]],
        known: dict[str, LedgerEntry],
    ) -> None:
        """Record a batch as pending in the ledger, then queue its orders for sending."""
        if not batch:
            return
        already = await self._ledger.record([entry for entry, _, _ in batch], known.keys())
        if already:
            # Taken for new, but fed before as they are now (they left and came back).
            for entry, _, parsed in batch:
                if entry.source_path in already:
                    stat = FileStat(entry.file_size, entry.file_mtime_ns)
                    self.handled[entry.source_path] = Handled(stat, "fed", parsed.plot_type)
            batch = [item for item in batch if item[0].source_path not in already]
            if not batch:
                return
        self._pending.add((entry, order) for entry, order, _ in batch)
        for entry, _, parsed in batch:
            stat = FileStat(entry.file_size, entry.file_mtime_ns)
            self.handled[entry.source_path] = Handled(stat, "fed", parsed.plot_type)
            log.debug("file fed", extra={"path": entry.source_path, "order_id": entry.order_id})
        self._metrics.files.labels("fed").inc(len(batch))
        log.info("files fed", extra={"files": len(batch), "pending": len(self._pending)})

    def _skip(self, rel: str, stat: FileStat, reason: str, plot_type: str) -> None:
        """Leave a file in place, remembered so it is not logged again on every rescan."""
        self.handled[rel] = Handled(stat, reason, plot_type)
        self._metrics.rejected.labels(reason).inc()
        self._metrics.files.labels("skipped").inc()
        log.info("file skipped", extra={"path": rel, "reason": reason, "plot_type": plot_type})

    async def _reject(
        self, rel: str, stat: FileStat, reason: str, detail: str = "", plot_type: str = ""
    ) -> None:
        """Quarantine, count and log a bad file (counted once the move is over, so whoever
        reads the counter finds the file where it went)."""
        self.handled[rel] = Handled(stat, reason, plot_type)
        try:
            target = await asyncio.to_thread(
                quarantine, self.root / rel, rel, self.quarantine_root, reason, detail
            )
        except OSError as exc:
            self._count_rejected(reason)
            self.unmoved[rel] = Unmoved(stat, reason, detail)
            log.error(
                "file rejected; could not quarantine it (tried again at every rescan)",
                extra={"path": rel, "reason": reason, "detail": detail, "error": repr(exc)},
            )
            return
        self._requeue.watch(rel, target, reason, asyncio.get_running_loop().time())
        self._count_rejected(reason)
        log.warning(
            "file quarantined",
            extra={"path": rel, "reason": reason, "detail": detail, "quarantined": str(target)},
        )

    async def _quarantine_unmoved(self, found: dict[str, FileStat]) -> None:
        """Move the rejected files that could not be moved before (already counted and
        logged); a file gone or rewritten since is no longer this one's business."""
        for rel, un in list(self.unmoved.items()):
            if found.get(rel) != un.stat:
                del self.unmoved[rel]
                continue
            try:
                target = await asyncio.to_thread(
                    quarantine, self.root / rel, rel, self.quarantine_root, un.reason, un.detail
                )
            except OSError as exc:
                log.debug("still cannot quarantine", extra={"path": rel, "error": repr(exc)})
                continue
            del self.unmoved[rel]
            self._requeue.watch(rel, target, un.reason, asyncio.get_running_loop().time())
            log.warning(
                "file quarantined (its first move had failed)",
                extra={"path": rel, "reason": un.reason, "quarantined": str(target)},
            )

    def _count_rejected(self, reason: str) -> None:
        self._metrics.rejected.labels(reason).inc()
        self._metrics.files.labels("quarantined").inc()


def unrepresentable(rel: str, parsed: ParsedName) -> str:
    """Why a parsed name cannot go into an order and the database; empty when it can."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not UTF-8"
    if not 0 <= parsed.run_number <= MAX_RUN_NUMBER:
        return f"run number {parsed.run_number} out of range"
    if not -1 <= parsed.chunk <= MAX_CHUNK:
        return f"chunk {parsed.chunk} out of range"
    if len(parsed.run_period) > MAX_RUN_PERIOD:
        return f"run period longer than {MAX_RUN_PERIOD} characters"
    if len(parsed.plot_type) > MAX_PLOT_TYPE:
        return f"plot type longer than {MAX_PLOT_TYPE} characters"
    return ""
