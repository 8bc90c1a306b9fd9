"""The keeper's gRPC service: reports in from every predictor stream, group-committed.

Each ``Record`` stream puts its reports into one bounded queue. A single writer task takes
batches of up to ``commit_max_batch`` reports (or what arrived within
``commit_max_wait_ms``), writes each batch in one transaction, and only then acknowledges
the batch's order ids on the streams they came from. A failed write (MariaDB restarting,
a full disk) is retried with backoff and never acknowledged before it commits.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable

import grpc
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, report_pb2
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import ServiceStatus, utcnow
from hydra_common.grpcserver import Backoff, RunningServer, start_server
from hydra_common.logs import get_logger
from hydra_common.runner import run_service
from hydra_keeper.alarms import AlarmDispatcher, AlarmRules
from hydra_keeper.beam import BeamGate, DatabaseBeam, EpicsBeamWatcher
from hydra_keeper.dbutil import upsert
from hydra_keeper.drift import DriftMonitor
from hydra_keeper.epics_status import StatusPublisher
from hydra_keeper.metrics import KeeperMetrics, RetentionMetrics
from hydra_keeper.notify import CommitNotifier
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.retention import Pruner, RetentionPolicy
from hydra_keeper.settings import KeeperSettings
from hydra_keeper.writer import BatchResult, BatchWriter

log = get_logger(__name__)

SERVICE_NAME = keeper_pb2.DESCRIPTOR.services_by_name["KeeperService"].full_name
service_status_t = ServiceStatus.__table__


class _Stream:
    """One Record stream: how many of its reports await a commit, and its acks."""

    __slots__ = ("acks", "pending", "reading")

    def __init__(self) -> None:
        self.acks: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self.pending = 0
        self.reading = True

    def ack(self, order_ids: list[str]) -> None:
        self.pending -= len(order_ids)
        self.acks.put_nowait(order_ids)


class ReportQueue:
    """A bounded FIFO of (stream, report) shared by every stream; one writer takes batches."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[tuple[_Stream, report_pb2.Report]] = deque()
        self._nonempty = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    def __len__(self) -> int:
        return len(self._items)

    async def put_many(self, stream: _Stream, reports: Iterable[report_pb2.Report]) -> None:
        """Append reports, waiting while the queue is full (back-pressure on the stream)."""
        items = self._items
        for report in reports:
            while len(items) >= self.maxsize:
                self._nonempty.set()
                self._space.clear()
                await self._space.wait()
            items.append((stream, report))
        self._nonempty.set()

    async def take(
        self, max_batch: int, max_wait: float
    ) -> list[tuple[_Stream, report_pb2.Report]]:
        """The next batch: up to max_batch items, waiting up to max_wait after the first."""
        items = self._items
        while not items:
            self._nonempty.clear()
            await self._nonempty.wait()
        if len(items) < max_batch and max_wait > 0:
            try:
                async with asyncio.timeout(max_wait):
                    while len(items) < max_batch:
                        self._nonempty.clear()
                        await self._nonempty.wait()
            except TimeoutError:
                pass
        batch = [items.popleft() for _ in range(min(max_batch, len(items)))]
        self._space.set()
        return batch


class KeeperService(keeper_pb2_grpc.KeeperServiceServicer):
    """Records predictors' reports (see the module docstring)."""

    def __init__(self, settings: KeeperSettings, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = KeeperMetrics(self.registry)
        self.instance = f"{socket.gethostname()}-{os.getpid()}"[:128]
        self.port = 0
        self.queue = ReportQueue(settings.keeper_queue_size)
        self.alarms = AlarmDispatcher(self.metrics, settings.alarm_command, settings.hall)
        self.engine = make_engine(settings.db_url)
        self.reference = ReferenceCache(settings.keeper_refresh_seconds)
        self.beam_watcher = EpicsBeamWatcher(settings, self.engine) if settings.epics_beam else None
        self.beam: BeamGate = self.beam_watcher or DatabaseBeam(settings)
        self.publisher = StatusPublisher(settings, self.engine) if settings.epics_publish else None
        self.writer = BatchWriter(
            self.engine,
            settings.storage_root,
            self.reference,
            settings.beam_current_threshold,
            settings.default_threshold,
            beam=self.beam,
            alarm_rules=AlarmRules(
                settings.alarm_bad_count,
                settings.alarm_window,
                settings.alarm_window_overrides,
                settings.alarm_repeat_seconds,
            ),
            keep_margin_below=settings.keep_margin_below,
            mask_accept_fraction=settings.mask_accept_fraction,
        )
        self.drift = DriftMonitor(self.engine, settings, self.registry)
        self.pruner = Pruner(
            self.engine,
            settings.storage_root,
            RetentionPolicy.from_settings(settings),
            RetentionMetrics(self.registry),
        )
        self.notifier = CommitNotifier()
        self.counts = {"reports": 0, "duplicates": 0, "rejected": 0, "batches": 0, "alarms": 0}
        self._busy = False
        self._idle = asyncio.Event()  # set after each commit; lets stop() wait for a drain
        self._server: RunningServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the writer, the heartbeat and the gRPC server; sets ``port``."""
        self.settings.storage_root.mkdir(parents=True, exist_ok=True)
        if self.beam_watcher is not None:
            await self.beam_watcher.start()
        if self.publisher is not None:
            await self.publisher.start()
        self._tasks = [
            asyncio.create_task(self._run_writer(), name="keeper-writer"),
            asyncio.create_task(self._run_heartbeat(), name="keeper-heartbeat"),
        ]
        if self.settings.drift_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self.drift.run_forever(), name="keeper-drift"))
        if self.pruner.policy.enabled:
            interval = self.settings.retention_interval_seconds
            self._tasks.append(
                asyncio.create_task(self.pruner.run_forever(interval), name="keeper-retention")
            )
        self._server = await start_server(
            [lambda server: keeper_pb2_grpc.add_KeeperServiceServicer_to_server(self, server)],
            [SERVICE_NAME],
            port=self.settings.keeper_port,
            host=self.settings.keeper_host,
        )
        self.port = self._server.port
        log.info("keeper started", extra={"port": self.port, "instance": self.instance})

    async def stop(self) -> None:
        """Stop taking reports, commit what is queued (within the grace period), stop."""
        grace = self.settings.grace_seconds
        self.notifier.close()  # open WatchCommits streams would hold up the server's grace
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        try:
            async with asyncio.timeout(grace):
                while len(self.queue) or self._busy:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            log.warning("stopping with reports not committed", extra={"queued": len(self.queue)})
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self._heartbeat("stopped")
        except Exception as exc:
            log.warning("final heartbeat failed", extra={"error": repr(exc)})
        await self.alarms.close()
        if self.beam_watcher is not None:
            await self.beam_watcher.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        await self.writer.remove_all_stale()
        await self.engine.dispose()
        log.info("keeper stopped", extra=dict(self.counts))

    async def Record(
        self,
        request_iterator: AsyncIterator[keeper_pb2.RecordRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[keeper_pb2.RecordResponse]:
        """Record a predictor's reports; answer with the order ids once committed.

        A report whose order id is already recorded is acknowledged again and changes
        nothing. The stream ends after the client stops sending and every report it sent
        is acknowledged.
        """
        stream = _Stream()
        reader = asyncio.create_task(self._read(request_iterator, stream))
        try:
            while stream.reading or stream.pending > 0:
                first = await stream.acks.get()
                ids = list(first or ())
                while not stream.acks.empty():
                    ids.extend(stream.acks.get_nowait() or ())
                if ids:
                    yield keeper_pb2.RecordResponse(order_ids=ids)
            await reader
        finally:
            reader.cancel()

    async def WatchCommits(
        self, request: keeper_pb2.WatchCommitsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[keeper_pb2.WatchCommitsResponse]:
        """A notice after each committed batch (the API reads the Run page's rows then)."""
        async for notice in self.notifier.stream():
            yield notice

    async def _read(
        self, request_iterator: AsyncIterator[keeper_pb2.RecordRequest], stream: _Stream
    ) -> None:
        try:
            async for request in request_iterator:
                reports = [r for r in request.reports if self._valid(r)]
                if reports:
                    stream.pending += len(reports)
                    await self.queue.put_many(stream, reports)
        finally:
            stream.reading = False
            stream.acks.put_nowait(None)

    def _valid(self, report: report_pb2.Report) -> bool:
        # Without an order id a report can be neither deduplicated nor acknowledged.
        if report.order.order_id and report.order.plot_type:
            return True
        log.error(
            "report without order id or plot type dropped",
            extra={"order_id": report.order.order_id, "plot_type": report.order.plot_type},
        )
        return False

    async def _run_writer(self) -> None:
        max_batch = self.settings.commit_max_batch
        max_wait = self.settings.commit_max_wait_ms / 1000.0
        while True:
            batch = await self.queue.take(max_batch, max_wait)
            self._busy = True
            try:
                await self._commit(batch)
            finally:
                self._busy = False
                self._idle.set()

    async def _commit(self, batch: list[tuple[_Stream, report_pb2.Report]]) -> None:
        reports = [report for _, report in batch]
        backoff = Backoff(initial=0.05)
        while True:
            started = time.perf_counter()
            try:
                result = await self.writer.write(reports)
                break
            except Exception as exc:
                self.metrics.db_write_errors.inc()
                log.warning(
                    "batch write failed; will retry",
                    extra={
                        "reports": len(reports),
                        "order_id": reports[0].order.order_id,
                        "error": repr(exc)[:500],
                    },
                )
                await backoff.wait()
        self._observe(result, len(reports), time.perf_counter() - started)
        acks: dict[_Stream, list[str]] = {}
        for stream, report in batch:
            acks.setdefault(stream, []).append(report.order.order_id)
        for stream, ids in acks.items():
            stream.ack(ids)
        self.notifier.publish({r.order.plot_type for r in reports}, result.recorded)
        self.alarms.raise_alarms(result.alarms)
        try:
            await self.writer.remove_stale(result)
        except OSError as exc:
            log.warning("cannot delete replaced live files", extra={"error": repr(exc)})

    def _observe(self, result: BatchResult, size: int, seconds: float) -> None:
        m = self.metrics
        m.commit_batch_size.observe(size)
        m.db_write_seconds.observe(seconds)
        m.last_commit.set(time.time())
        m.reports.inc(result.recorded)
        if result.duplicates:
            m.duplicates.inc(result.duplicates)
        for (verdict, confirmed), n in result.verdicts.items():
            m.verdicts.labels(verdict=verdict, confirmed="true" if confirmed else "false").inc(n)
        for reason, n in result.kept.items():
            m.images_kept.labels(reason=reason).inc(n)
        for reason, n in result.files_skipped.items():
            m.files_skipped.labels(reason=reason).inc(n)
        if result.beam_on is not None:
            m.beam_on.set(result.beam_on)
        for event, n in result.alarm_events.items():
            m.alarm_events.labels(event=event).inc(n)
        for why, n in result.suppressed.items():
            m.alarms_suppressed.labels(reason=why).inc(n)
        c = self.counts
        c["reports"] += result.recorded
        c["duplicates"] += result.duplicates
        c["rejected"] += result.rejected
        c["batches"] += 1
        c["alarms"] += len(result.alarms)

    async def _run_heartbeat(self) -> None:
        while True:
            try:
                await self._heartbeat("serving")
            except Exception as exc:
                log.warning("heartbeat failed", extra={"error": repr(exc)[:300]})
            await asyncio.sleep(self.settings.heartbeat_seconds)

    async def _heartbeat(self, state: str) -> None:
        """Upsert this instance's service_status row, and refresh the beam gauge."""
        async with self.engine.begin() as conn:
            beam_on = (await self.beam.status(conn)).beam_on
            self.metrics.beam_on.set(beam_on)
            details = {**self.counts, "queued": len(self.queue), "beam_on": beam_on}
            row = {
                "service": "keeper",
                "instance": self.instance,
                "state": state,
                "details": details,
                "last_seen": utcnow(),
            }
            await upsert(conn, service_status_t, [row], ["service", "instance"])


async def main(settings: KeeperSettings) -> None:
    """Run the keeper until SIGTERM or SIGINT, then stop gracefully."""
    registry = CollectorRegistry()
    await run_service(
        "keeper", settings, lambda: KeeperService(settings, registry), registry=registry
    )
