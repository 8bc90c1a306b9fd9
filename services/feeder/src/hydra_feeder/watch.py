"""The inotify watcher: files to look at now, so a plot is fed without waiting for a rescan.

Rescans find every file anyway (halls mount monitoring output over NFS, where inotify sees
nothing); the watcher only makes the feeder quick where events exist. It tells the intake's
scan loop through ``ScanRequests``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from prometheus_client import Counter, Gauge
from watchfiles import Change, awatch

from hydra_common.logs import get_logger

log = get_logger(__name__)

WATCH_RETRY_FIRST = 0.1  # seconds before the watcher starts again after a failure
WATCH_RETRY_MAX = 5.0  # its longest pause, while it keeps failing
WATCH_HEALTHY_SECONDS = 30.0  # a watcher that ran this long starts again without a pause
# The watcher answers at least this often, events or not: its first answer says the watches
# are in place. Each answer costs the event loop a thread hand-over, so it is not sooner.
WATCH_ANSWER_MS = 2_000
# How long the watcher waits for more events before it hands over what it has (watchfiles'
# ``step``, its default): a burst of plots is handed over this long after its last file
# lands, and a file's stability window starts only when the feeder first sees it, so this
# adds to every verdict's latency. 200 ms saved about 1 ms of CPU a second with no file
# arriving (each wake takes the GIL) but made the 568-plot burst of ``make bench`` later.
WATCH_STEP_MS = 50


class ScanRequests:
    """What the scan loop is asked to do before its next rescan is due."""

    def __init__(self) -> None:
        self.touched: set[str] = set()  # relative paths to look at now
        self._rescan = False
        self._wake = asyncio.Event()

    def touch(self, rel: str) -> None:
        """Look at this file at the next pass (``wake`` makes that now)."""
        self.touched.add(rel)

    def take_touched(self) -> set[str]:
        """The files touched since the last call."""
        touched, self.touched = self.touched, set()
        return touched

    def rescan_now(self) -> None:
        """Rescan at once: events were lost."""
        self._rescan = True
        self._wake.set()

    def take_rescan(self) -> bool:
        """Whether a rescan was asked for since the last call."""
        rescan, self._rescan = self._rescan, False
        return rescan

    def wake(self) -> None:
        """End the scan loop's wait."""
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        """Wait up to ``seconds``, less when woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


class Watcher:
    """Keeps an inotify watcher on the input directory running until ``stop`` is set."""

    def __init__(
        self,
        root: Path,
        quarantine_root: Path,
        requests: ScanRequests,
        stop: asyncio.Event,
        watching: Gauge,
        restarts: Counter,
    ) -> None:
        self._root = root
        self._quarantine_root = quarantine_root
        self._requests = requests
        self._stop = stop
        self._watching = watching
        self._restarts = restarts

    async def run(self) -> None:
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
                return  # stop set: a clean end
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._restarts.inc()
                log.warning(
                    "inotify watch failed; rescanning and starting it again",
                    extra={"error": repr(exc)[:500], "retry_in_s": pause},
                )
            self._requests.rescan_now()
            if loop.time() - started > WATCH_HEALTHY_SECONDS:
                pause = WATCH_RETRY_FIRST  # it had been running fine: this is a new failure
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
            pause = min(pause * 2, WATCH_RETRY_MAX)

    async def _watch_once(self) -> None:
        """Turn inotify events into files to look at now; rescans cover what it misses.

        ``hydra_feeder_watching`` turns 1 at the watcher's first answer (an event or
        ``WATCH_ANSWER_MS`` of quiet), when its watches are surely in place, not when it is
        merely asked for.
        """
        try:
            async for changes in awatch(
                self._root,
                stop_event=self._stop,
                recursive=True,
                rust_timeout=WATCH_ANSWER_MS,
                step=WATCH_STEP_MS,
                yield_on_timeout=True,
            ):
                self._watching.set(1)
                for change, name in changes:
                    if change == Change.deleted:
                        continue
                    rel = self.relative(Path(name))
                    if rel is not None:
                        self._requests.touch(rel)
                if changes:
                    self._requests.wake()
        finally:
            self._watching.set(0)

    def relative(self, path: Path) -> str | None:
        """The path relative to the input dir, or None when it is not to be looked at."""
        if path.is_relative_to(self._quarantine_root):
            return None
        try:
            rel = path.relative_to(self._root)
        except ValueError:
            return None
        if any(part.startswith(".") for part in rel.parts):
            return None
        return rel.as_posix()
