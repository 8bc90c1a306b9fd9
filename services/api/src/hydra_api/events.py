"""Live Run-page updates: one reader per API process, fanned out to every SSE client.

The keeper commits ``run_time`` rows and, after each commit, sends a notice on its
``WatchCommits`` stream, to which every API process subscribes (``keeper_address``) while
it has a client. A notice wakes the reader at once; without one (the keeper restarting, a
notice lost, a second keeper replica behind the Service) it reads every
``sse_poll_seconds`` anyway, so a missed notice only delays. With no client connected the
stream is closed (at the first notice after the last client left): nobody would be told,
so a commit then costs neither the keeper nor the API anything for the Run page.

Each read is ONE query for all connected clients, and sends each client the rows whose
inference changed (a client subscribes before it loads its snapshot, so it misses
nothing). Rows are matched by ``run_history_id`` within a look-back window rather than by
``updated_at > last seen``, because a transaction that commits late can carry an older
``updated_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import grpc
import sqlalchemy as sa
from hydra.v1 import keeper_pb2, keeper_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_api.metrics import ApiMetrics
from hydra_api.models import RuntimeItem
from hydra_common.db.schema import RunTime, utcnow
from hydra_common.grpcserver import Backoff, channel, describe_rpc_error
from hydra_common.logs import get_logger

log = get_logger(__name__)

LOOK_BACK = timedelta(seconds=30)
CLIENT_QUEUE = 64
STOP_SECONDS = 5.0  # the longest stop() waits for a cancelled task

RuntimeLoader = Callable[[AsyncSession, list[int] | None], Awaitable[list[RuntimeItem]]]


class RuntimeBroadcaster:
    """Reads run_time when the keeper commits (or every ``poll_seconds``) and hands changed
    items to every subscribed client queue."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        load_items: RuntimeLoader,
        metrics: ApiMetrics,
        poll_seconds: float,
        keeper_address: str = "",
    ) -> None:
        self._sessionmaker = sessionmaker
        self._load_items = load_items
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._clients: set[asyncio.Queue[list[RuntimeItem] | None]] = set()
        self._seen: dict[int, int] = {}  # plot_type_id -> run_history_id last broadcast
        self._since: datetime | None = None
        self._started = utcnow()
        self._keeper_address = keeper_address
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()  # set while a client is connected
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self.polls = 0
        self.notices = 0

    @property
    def clients(self) -> int:
        """Connected clients."""
        return len(self._clients)

    def start(self) -> None:
        """Start the reader, and the subscription to the keeper's commit notices."""
        self._started = utcnow()
        self._task = asyncio.create_task(self._run(), name="runtime-poller")
        if self._keeper_address:
            self._watch_task = asyncio.create_task(self._watch(), name="runtime-watch")

    async def stop(self) -> None:
        """Stop reading and end every client's stream. A task that does not end within
        STOP_SECONDS of its cancellation (a gRPC call cancelled while its channel was still
        connecting was seen to hang a test's teardown) is left behind, never waited for."""
        for task in (self._watch_task, self._task):
            if task is not None:
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
                if not done:
                    log.warning("runtime task did not stop", extra={"task": task.get_name()})
                elif not task.cancelled() and task.exception() is not None:
                    log.warning("runtime task failed", extra={"error": repr(task.exception())})
        self.close_streams()

    def close_streams(self) -> None:
        """End every client's stream (browsers reconnect, to another replica if need be)."""
        for q in list(self._clients):
            with contextlib.suppress(asyncio.QueueEmpty):
                while q.full():
                    q.get_nowait()
            q.put_nowait(None)

    def subscribe(self) -> asyncio.Queue[list[RuntimeItem] | None]:
        """A new client's queue of changed items (None = the server is closing)."""
        if not self._clients:
            # Nobody was listening, so nothing was polled: learn the state afresh, and
            # send what changes from now on (the client loads its snapshot after this).
            self._since = None
            self._seen.clear()
            self._started = utcnow()
        q: asyncio.Queue[list[RuntimeItem] | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(q)
        self._listening.set()  # (re)opens the keeper's notices
        self._metrics.sse_clients.set(len(self._clients))
        return q

    def unsubscribe(self, q: asyncio.Queue[list[RuntimeItem] | None]) -> None:
        """Forget a client."""
        self._clients.discard(q)
        if not self._clients:
            self._listening.clear()  # the notices' stream closes at its next notice
        self._metrics.sse_clients.set(len(self._clients))

    def notify(self) -> None:
        """The keeper committed: read the changed rows now (notices coalesce)."""
        self.notices += 1
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runtime poll failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def _watch(self) -> None:
        """Subscribe to the keeper's commit notices while a client is connected; reconnect
        with backoff when the keeper goes.

        The stream opens when a client arrives, with a read at once (what was committed
        while nobody listened), and closes at the first notice after the last client left.
        A commit in the moment between a client's arrival and the keeper's taking the new
        stream is read at the next notice or the fallback poll, as a lost notice is."""
        backoff = Backoff(initial=0.2)
        async with channel(self._keeper_address) as ch:
            stub = keeper_pb2_grpc.KeeperServiceStub(ch)
            while True:
                await self._listening.wait()
                self.notify()
                unwanted = False
                try:
                    call = stub.WatchCommits(keeper_pb2.WatchCommitsRequest())
                    async for _ in call:
                        backoff.reset()
                        self.notify()
                        if not self._clients:
                            unwanted = True
                            call.cancel()  # nobody to tell: the keeper stops sending
                            break
                    else:
                        # The keeper stopped (a restart): catch up on what it committed last.
                        self.notify()
                except grpc.aio.AioRpcError as exc:
                    log.debug(
                        "keeper commit notices unavailable; polling",
                        extra={"keeper": self._keeper_address, "error": describe_rpc_error(exc)},
                    )
                    self.notify()
                if not unwanted:
                    await backoff.wait()

    async def poll_once(self) -> None:
        """One query for changed run_time rows; broadcast them to every client.

        With no client connected there is nobody to tell: no query (an idle hall with no
        Run page open costs the database nothing).
        """
        if not self._clients:
            return
        self.polls += 1
        stmt = sa.select(RunTime.plot_type_id, RunTime.run_history_id, RunTime.updated_at)
        if self._since is not None:
            stmt = stmt.where(RunTime.updated_at >= self._since - LOOK_BACK)
        async with self._sessionmaker() as session:
            rows = (await session.execute(stmt)).tuples().all()
            if self._since is None:
                # First poll: learn the state; only what changed since start-up is news.
                changed = [pt for pt, _, updated in rows if updated >= self._started]
            else:
                changed = [pt for pt, rh, _ in rows if self._seen.get(pt) != rh]
            for pt, rh, updated in rows:
                self._seen[pt] = rh
                if self._since is None or updated > self._since:
                    self._since = updated
            if self._since is None:
                self._since = utcnow()
            if not changed or not self._clients:
                return
            items = await self._load_items(session, changed)
        for q in list(self._clients):
            try:
                q.put_nowait(items)
            except asyncio.QueueFull:
                # A client that does not read is dropped; its browser reconnects and resyncs.
                self.unsubscribe(q)
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                q.put_nowait(None)


def sse_message(event: str, data: object) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def event_stream(
    broadcaster: RuntimeBroadcaster,
    snapshot: list[RuntimeItem],
    heartbeat_seconds: float,
    queue: asyncio.Queue[list[RuntimeItem] | None],
) -> AsyncIterator[str]:
    """A client's event stream: the snapshot, then changes, with heartbeat comments."""
    try:
        yield "retry: 2000\n\n"
        yield sse_message(
            "runtime", {"full": True, "items": [i.model_dump(mode="json") for i in snapshot]}
        )
        while True:
            try:
                items = await asyncio.wait_for(queue.get(), heartbeat_seconds)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if items is None:
                return
            yield sse_message(
                "runtime", {"full": False, "items": [i.model_dump(mode="json") for i in items]}
            )
    finally:
        broadcaster.unsubscribe(queue)
