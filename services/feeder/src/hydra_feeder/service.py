"""The feeder: turns finished image files in the input directory into inference orders.

Five tasks share one event loop:

- *watch*: inotify events (``watchfiles``) mark files to look at now;
- *scan*: a full rescan every ``rescan_seconds`` (NFS gives no events), the stability
  check, then naming, plot-type lookup, the ledger and validation of each stable file;
- *connection*: one ``Submit`` stream to the balancer; on every (re)connect it re-sends
  every pending order (bytes re-read from disk), then streams new ones in batches;
- *flush*: writes done notices to the ledger in batches;
- *refresh*: re-reads the plot types.

A file becomes a pending ledger row *before* its order is sent and a done row when the
balancer reports it done, so neither a feeder nor a balancer restart loses or repeats a file.
At most ``feeder_window`` orders are pending at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from hydra.v1 import balancer_pb2, balancer_pb2_grpc
from hydra.v1.order_pb2 import InferenceOrder
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from watchfiles import Change, awatch

from hydra_common.db.engine import make_engine
from hydra_common.grpcserver import Backoff, channel, describe_rpc_error
from hydra_common.ids import uuid7
from hydra_common.logs import get_logger
from hydra_common.runner import run_service
from hydra_feeder.ledger import Ledger, LedgerEntry, PlotTypeInfo
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import ParsedName, make_parser, same_file_type
from hydra_feeder.quarantine import quarantine
from hydra_feeder.requeue import Requeue
from hydra_feeder.scanner import FileStat, StabilityTracker, stat_file, walk
from hydra_feeder.settings import FeederSettings
from hydra_feeder.validate import SKIP_REASONS, Rejected, check_inside, read_and_validate, read_file

log = get_logger(__name__)

MAX_SOURCE_PATH = 768  # fed_files.source_path
MAX_RUN_NUMBER = 2**63 - 1  # int64 in the order, BIGINT in the database
MAX_CHUNK = 2**31 - 1  # int32 in the order, INT in the database
MAX_RUN_PERIOD = 64  # run_history.run_period
MAX_PLOT_TYPE = 128  # plot_types.name
WATCH_RETRY_FIRST = 0.1  # seconds before the watcher starts again after a failure
WATCH_RETRY_MAX = 5.0  # its longest pause, while it keeps failing
WATCH_HEALTHY_SECONDS = 30.0  # a watcher that ran this long starts again without a pause
WATCH_ANSWER_MS = 500  # the watcher answers at least this often, events or not


@dataclass
class _Pending:
    """An order fed and not done; ``order`` holds it (with its bytes) until it is sent."""

    entry: LedgerEntry
    order: InferenceOrder | None = None


@dataclass(frozen=True)
class _Handled:
    """A file the feeder has dealt with, as it was then (a change makes it new again)."""

    stat: FileStat
    outcome: str  # "fed", or the reason it was not
    plot_type: str = ""


class FeederService:
    """Watches the input directory and feeds finished, valid images to the balancer."""

    def __init__(self, settings: FeederSettings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else REGISTRY
        self.metrics = FeederMetrics(self.registry)
        self.parse = make_parser(settings.file_pattern)
        self.root = settings.input_root
        self.quarantine_root = settings.quarantine_root
        self.tracker = StabilityTracker(settings.stable_seconds)
        self.requeue = Requeue(self.root, settings.stable_seconds, settings.requeue_seconds)
        self.handled: dict[str, _Handled] = {}
        self.pending: dict[str, _Pending] = {}  # order id -> pending order, oldest first
        self.unsent: deque[str] = deque()
        self.plot_types: dict[str, PlotTypeInfo] = {}
        self.connected = False
        self.connections = 0
        self.metrics.bind(lambda: len(self.pending))
        self._touched: set[str] = set()
        self._rescan_now = False
        self._scan_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._room = asyncio.Event()
        self._done_ids: list[str] = []
        self._done_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._generation = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._engine: AsyncEngine | None = None
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        """The ledger (after start)."""
        assert self._ledger is not None, "FeederService.start() first"
        return self._ledger

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load plot types and pending orders, then start watching, scanning and sending."""
        self._engine = make_engine(self.settings.db_url)
        self._ledger = Ledger(self._engine)
        self.plot_types = await self.ledger.plot_types()
        for entry in await self.ledger.pending():
            self.pending[entry.order_id] = _Pending(entry)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("cannot create input dir", extra={"path": str(self.root), "error": exc})
        for name, job in (
            ("watch", self._watch()),
            ("scan", self._scan_loop()),
            ("connection", self._connection_loop()),
            ("flush", self._flush_loop()),
            ("refresh", self._refresh_loop()),
        ):
            self._tasks.append(asyncio.create_task(job, name=f"feeder-{name}"))
        log.info(
            "feeder started",
            extra={
                "input_dir": str(self.root),
                "balancer": self.settings.balancer_address,
                "plot_types": len(self.plot_types),
                "pending": len(self.pending),
            },
        )

    async def stop(self) -> None:
        """Stop every task and write the done notices received so far."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ledger is not None and self._done_ids:
            ids, self._done_ids = self._done_ids, []
            try:
                await self.ledger.mark_done(ids)
            except asyncio.CancelledError:
                # Stopping mid-write: stop() writes them again (marking done is idempotent).
                self._done_ids = ids + self._done_ids
                raise
            except Exception:
                log.exception("could not mark done orders at stop", extra={"orders": len(ids)})
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        log.info("feeder stopped", extra={"pending": len(self.pending)})

    # --- finding files ---------------------------------------------------------------------

    async def _watch(self) -> None:
        """Keep an inotify watcher running: whatever ends it (a file name that is not UTF-8
        makes ``watchfiles`` give up), it starts again at once, then with a growing pause if
        it keeps failing, and a rescan runs right away for the events the failure swallowed.
        ``hydra_feeder_watching`` says whether it is up."""
        loop = asyncio.get_running_loop()
        pause = WATCH_RETRY_FIRST
        while not self._stop.is_set():
            started = loop.time()
            try:
                await self._watch_once()
                return  # stop_event set: a clean end
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.watch_restarts.inc()
                log.warning(
                    "inotify watch failed; rescanning and starting it again",
                    extra={"error": repr(exc)[:500], "retry_in_s": pause},
                )
            self._rescan_now = True
            self._scan_wake.set()
            if loop.time() - started > WATCH_HEALTHY_SECONDS:
                pause = WATCH_RETRY_FIRST  # it had been running fine: this is a new failure
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
            pause = min(pause * 2, WATCH_RETRY_MAX)

    async def _watch_once(self) -> None:
        """Turn inotify events into files to look at now; rescans cover what it misses.

        ``hydra_feeder_watching`` turns 1 at the watcher's first answer (an event or a quiet
        half second), when its watches are surely in place, not when it is merely asked for.
        """
        try:
            async for changes in awatch(
                self.root,
                stop_event=self._stop,
                recursive=True,
                rust_timeout=WATCH_ANSWER_MS,
                yield_on_timeout=True,
            ):
                self.metrics.watching.set(1)
                for change, name in changes:
                    if change == Change.deleted:
                        continue
                    rel = self._relative(Path(name))
                    if rel is not None:
                        self._touched.add(rel)
                if changes:
                    self._scan_wake.set()
        finally:
            self.metrics.watching.set(0)

    def _relative(self, path: Path) -> str | None:
        """The path relative to the input dir, or None when it is not to be looked at."""
        if path.is_relative_to(self.quarantine_root):
            return None
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        if any(part.startswith(".") for part in rel.parts):
            return None
        return rel.as_posix()

    def _observe(self, rel: str, stat: FileStat, now: float) -> None:
        handled = self.handled.get(rel)
        if handled is not None:
            if handled.stat == stat:
                return  # dealt with, unchanged
            del self.handled[rel]  # rewritten: a new file as far as Hydra is concerned
        self.tracker.observe(rel, stat, now)

    def _stat_many(self, rels: Iterable[str]) -> dict[str, FileStat]:
        found = {}
        for rel in rels:
            stat = stat_file(self.root / rel)
            if stat is not None:
                found[rel] = stat
        return found

    async def _scan_loop(self) -> None:
        """Rescan, observe, and process files that held still long enough."""
        loop = asyncio.get_running_loop()
        next_rescan = 0.0
        while True:
            if loop.time() >= next_rescan or self._rescan_now:
                self._rescan_now = False
                found = await asyncio.to_thread(walk, self.root, self.quarantine_root)
                now = loop.time()
                self.tracker.keep_only(found)
                for rel in [r for r in self.handled if r not in found]:
                    del self.handled[rel]
                for rel, stat in found.items():
                    self._observe(rel, stat, now)
                next_rescan = now + self.settings.rescan_seconds
            if len(self.requeue):
                for rel in await asyncio.to_thread(self.requeue.due, loop.time()):
                    self.metrics.requeued.inc()
                    log.warning("quarantined file was finished; put back", extra={"path": rel})
                    self._touched.add(rel)
            if self._touched:
                touched, self._touched = self._touched, set()
                stats = await asyncio.to_thread(self._stat_many, touched)
                now = loop.time()
                for rel, stat in stats.items():
                    self._observe(rel, stat, now)
            ready = self.tracker.take_ready(loop.time())
            for i in range(0, len(ready), self.settings.feeder_batch):
                chunk = ready[i : i + self.settings.feeder_batch]
                try:
                    await self._process(chunk)
                except Exception:
                    # The database is down, most likely: look at these files again later.
                    # Retrying is safe: files fed meanwhile are in the ledger, rejected ones
                    # have moved away.
                    log.exception("could not process files; retrying", extra={"files": len(chunk)})
                    now = loop.time()
                    for rel, stat in ready[i:]:
                        if rel not in self.handled:
                            self.tracker.observe(rel, stat, now)
                    await asyncio.sleep(1.0)
                    break
            wait = next_rescan - loop.time()
            if len(self.tracker) or len(self.requeue):
                wait = min(wait, max(self.settings.stable_seconds / 4, 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_wake.wait(), max(wait, 0.01))
            self._scan_wake.clear()

    # --- one batch of stable files ---------------------------------------------------------

    def _classify(self, rel: str, stat: FileStat) -> ParsedName | None:
        """Name and plot type checks; returns the parsed name when the file is to be read."""
        check_inside(self.root / rel, self.root)  # whatever its name: a link must not escape
        parsed = self.parse(rel)
        if parsed is None or len(rel) > MAX_SOURCE_PATH:
            raise Rejected("bad_name", "does not follow the naming convention")
        if problem := _unrepresentable(rel, parsed):
            # Such a name cannot travel in an order or be stored: rejecting it here keeps it
            # from failing its whole batch over and over.
            raise Rejected("bad_name", problem)
        info = self.plot_types.get(parsed.plot_type)
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
        candidates: list[tuple[str, FileStat, ParsedName]] = []
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
        known = await self.ledger.lookup([rel for rel, _, _ in candidates])
        max_age_s = self.settings.max_file_age_days * 86400
        oldest_ns = time.time_ns() - int(max_age_s * 1e9)
        todo: list[tuple[str, FileStat, ParsedName]] = []
        for rel, stat, parsed in candidates:
            entry = known.get(rel)
            if entry and (entry.file_size, entry.file_mtime_ns) == (stat.size, stat.mtime_ns):
                # Fed before (a restart): done, or pending and re-sent on connect.
                self.handled[rel] = _Handled(stat, "fed", parsed.plot_type)
                continue
            if entry is None and max_age_s > 0 and stat.mtime_ns < oldest_ns:
                # Older than the ledger remembers (retention prunes its done rows): feeding it
                # could feed it a second time.
                self._skip(rel, stat, "too_old", parsed.plot_type)
                continue
            todo.append((rel, stat, parsed))
        batch: list[tuple[LedgerEntry, InferenceOrder, ParsedName]] = []
        while todo:
            room = self.settings.feeder_window - len(self.pending) - len(batch)
            if room <= 0:
                await self._commit(batch, known)
                batch = []
                await self._wait_for_window()
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

    def _load_many(self, files: list[tuple[str, FileStat, ParsedName]]) -> list[bytes | Exception]:
        """Read and validate files (blocking: runs in a worker thread); an error per file."""
        s = self.settings
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
                self.metrics.read_seconds.observe(time.perf_counter() - started)
        return out

    async def _read(self, rel: str, stat: FileStat, parsed: ParsedName) -> InferenceOrder | None:
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
            self.metrics.rejected.labels("vanished").inc()
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
                self.tracker.observe(rel, now_stat, asyncio.get_running_loop().time())
            return None
        return _order(uuid7(), rel, parsed, stat, data)

    async def _commit(
        self,
        batch: list[tuple[LedgerEntry, InferenceOrder, ParsedName]],
        known: dict[str, LedgerEntry],
    ) -> None:
        """Record a batch as pending in the ledger, then queue its orders for sending."""
        if not batch:
            return
        await self.ledger.record([entry for entry, _, _ in batch], known.keys())
        for entry, order, parsed in batch:
            self.pending[entry.order_id] = _Pending(entry, order)
            self.unsent.append(entry.order_id)
            stat = FileStat(entry.file_size, entry.file_mtime_ns)
            self.handled[entry.source_path] = _Handled(stat, "fed", parsed.plot_type)
            log.debug("file fed", extra={"path": entry.source_path, "order_id": entry.order_id})
        self.metrics.files.labels("fed").inc(len(batch))
        log.info("files fed", extra={"files": len(batch), "pending": len(self.pending)})
        self._send_wake.set()

    async def _wait_for_window(self) -> None:
        while len(self.pending) >= self.settings.feeder_window:
            self._room.clear()
            await self._room.wait()

    def _skip(self, rel: str, stat: FileStat, reason: str, plot_type: str) -> None:
        """Leave a file in place, remembered so it is not logged again on every rescan."""
        self.handled[rel] = _Handled(stat, reason, plot_type)
        self.metrics.rejected.labels(reason).inc()
        self.metrics.files.labels("skipped").inc()
        log.info("file skipped", extra={"path": rel, "reason": reason, "plot_type": plot_type})

    async def _reject(
        self, rel: str, stat: FileStat, reason: str, detail: str = "", plot_type: str = ""
    ) -> None:
        """Count, log and quarantine a bad file."""
        self.handled[rel] = _Handled(stat, reason, plot_type)
        self.metrics.rejected.labels(reason).inc()
        self.metrics.files.labels("quarantined").inc()
        try:
            target = await asyncio.to_thread(
                quarantine, self.root / rel, rel, self.quarantine_root, reason, detail
            )
        except OSError as exc:
            log.error(
                "file rejected; could not quarantine it",
                extra={"path": rel, "reason": reason, "detail": detail, "error": repr(exc)},
            )
            return
        log.warning(
            "file quarantined",
            extra={"path": rel, "reason": reason, "detail": detail, "quarantined": str(target)},
        )
        self.requeue.watch(rel, target, reason, asyncio.get_running_loop().time())

    # --- the balancer stream ---------------------------------------------------------------

    async def _connection_loop(self) -> None:
        """Keep one Submit stream open; every (re)connect re-sends every pending order."""
        backoff = Backoff(0.1, 5.0)
        while True:
            self._generation += 1
            self.unsent = deque(self.pending)
            ch = channel(self.settings.balancer_address)
            try:
                stub = balancer_pb2_grpc.BalancerServiceStub(ch)
                call = stub.Submit(self._requests(self._generation))
                async for response in call:
                    if not self.connected:
                        self.connected = True
                        self.connections += 1
                        backoff.reset()
                        log.info("connected to balancer", extra={"pending": len(self.pending)})
                    if response.done:
                        self._on_done(response.done)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "balancer stream broke",
                    extra={"error": describe_rpc_error(exc), "pending": len(self.pending)},
                )
            except Exception:
                log.exception("balancer stream failed", extra={"pending": len(self.pending)})
            finally:
                self.connected = False
                await ch.close()
            await backoff.wait()

    async def _requests(self, generation: int) -> AsyncIterator[balancer_pb2.SubmitRequest]:
        """Batches of orders for one stream; the bytes are dropped once handed to gRPC."""
        while generation == self._generation:
            if not self.unsent:
                self._send_wake.clear()
                await self._send_wake.wait()
                continue
            take = min(self.settings.feeder_batch, len(self.unsent))
            orders = []
            for oid in [self.unsent.popleft() for _ in range(take)]:
                pending = self.pending.get(oid)
                if pending is None:
                    continue  # done meanwhile
                order = pending.order or await self._rebuild(pending.entry)
                pending.order = None
                if order is not None:
                    orders.append(order)
            if orders:
                yield balancer_pb2.SubmitRequest(orders=orders, feeder_id=self.settings.name)

    async def _rebuild(self, entry: LedgerEntry) -> InferenceOrder | None:
        """A pending order again, its bytes re-read; a gone or changed file ends it."""
        rel = entry.source_path
        parsed = self.parse(rel)
        stat = stat_file(self.root / rel)
        if stat is None:
            self._finish(entry, "vanished")
            return None
        if parsed is None or (stat.size, stat.mtime_ns) != (entry.file_size, entry.file_mtime_ns):
            # Rewritten since it was fed: the scan feeds the new version as a new order.
            self.handled.pop(rel, None)
            self._finish(entry, "changed")
            return None
        try:
            data = await asyncio.to_thread(
                lambda: read_file(
                    check_inside(self.root / rel, self.root), self.settings.max_file_bytes
                )
            )
        except (OSError, Rejected) as exc:
            self._finish(entry, "vanished", repr(exc))
            return None
        return _order(entry.order_id, rel, parsed, stat, data)

    def _finish(self, entry: LedgerEntry, reason: str, detail: str = "") -> None:
        """Mark a pending order done without sending it."""
        self.pending.pop(entry.order_id, None)
        self._done_ids.append(entry.order_id)
        self._done_wake.set()
        self._room.set()
        if reason == "vanished":
            self.metrics.rejected.labels("vanished").inc()
        log.warning(
            "pending order ended without sending",
            extra={
                "order_id": entry.order_id,
                "path": entry.source_path,
                "reason": reason,
                "detail": detail,
            },
        )

    def _on_done(self, ids: Iterable[str]) -> None:
        count = 0
        pending = self.pending
        for oid in ids:
            if pending.pop(oid, None) is not None:
                self._done_ids.append(oid)
                count += 1
        if count:
            self.metrics.orders_done.inc(count)
            self._room.set()
            self._done_wake.set()

    # --- ledger upkeep ---------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        """Write done notices to the ledger, as many per transaction as have arrived."""
        while True:
            await self._done_wake.wait()
            self._done_wake.clear()
            if not self._done_ids:
                continue
            ids, self._done_ids = self._done_ids, []
            try:
                await self.ledger.mark_done(ids)
            except asyncio.CancelledError:
                # Stopping mid-write: stop() writes them again (marking done is idempotent).
                self._done_ids = ids + self._done_ids
                raise
            except Exception:
                log.exception("could not mark orders done; retrying", extra={"orders": len(ids)})
                self._done_ids = ids + self._done_ids
                await asyncio.sleep(1.0)
                self._done_wake.set()

    async def refresh_plot_types(self) -> None:
        """Re-read plot types; files skipped for a plot type that is now active are retried."""
        types = await self.ledger.plot_types()
        if types == self.plot_types:
            return
        self.plot_types = types
        for rel, handled in list(self.handled.items()):
            info = types.get(handled.plot_type)
            if handled.outcome in SKIP_REASONS and info is not None and not info.ignored:
                del self.handled[rel]
        log.info("plot types changed", extra={"plot_types": len(types)})

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.feeder_refresh_seconds)
            try:
                await self.refresh_plot_types()
            except Exception as exc:
                log.warning("could not read plot types", extra={"error": repr(exc)})


def _unrepresentable(rel: str, parsed: ParsedName) -> str:
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


def _order(
    order_id: str, rel: str, parsed: ParsedName, stat: FileStat, data: bytes
) -> InferenceOrder:
    order = InferenceOrder(
        order_id=order_id,
        plot_type=parsed.plot_type,
        run_period=parsed.run_period,
        run_number=parsed.run_number,
        chunk=parsed.chunk,
        source_path=rel,
        image=data,
        file_size=stat.size,
    )
    order.stages.file_ns = stat.mtime_ns
    order.stages.fed_ns = time.time_ns()
    return order


async def main(settings: FeederSettings) -> None:
    """Run the feeder until SIGTERM or SIGINT, then stop."""
    from hydra_common.db.migrate import wait_for_database

    await run_service(
        "feeder",
        settings,
        lambda: FeederService(settings),
        prepare=lambda: wait_for_database(settings.db_url),
    )
