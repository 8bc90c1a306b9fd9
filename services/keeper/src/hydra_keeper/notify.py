"""Commit notices for the keeper's ``WatchCommits`` stream (the API's Run-page push).

After each committed batch the writer calls :meth:`CommitNotifier.publish` with the batch's
plot types. Every subscriber (one stream per API replica) holds at most ONE pending
notice: a notice that is not yet sent when the next commit comes is merged with it, so a
slow or stalled reader costs a bounded set of plot-type names and never holds up a commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from hydra.v1 import keeper_pb2


class _Subscriber:
    """One stream's pending notice (plot types and report count) and its wake-up."""

    __slots__ = ("closed", "plot_types", "ready", "reports")

    def __init__(self) -> None:
        self.plot_types: set[str] = set()
        self.reports = 0
        self.ready = asyncio.Event()
        self.closed = False


class CommitNotifier:
    """Fans commit notices out to the ``WatchCommits`` streams."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()
        self._closed = False
        self.published = 0

    @property
    def subscribers(self) -> int:
        """Open streams."""
        return len(self._subscribers)

    def publish(self, plot_types: Iterable[str], reports: int) -> None:
        """Tell every subscriber that a batch with these plot types was committed."""
        if not self._subscribers or reports <= 0:
            return
        names = set(plot_types)
        self.published += 1
        for sub in self._subscribers:
            sub.plot_types |= names
            sub.reports += reports
            sub.ready.set()

    def close(self) -> None:
        """End every stream, and refuse new ones (the keeper is stopping; readers reconnect)."""
        self._closed = True
        for sub in self._subscribers:
            sub.closed = True
            sub.ready.set()

    async def stream(self) -> AsyncIterator[keeper_pb2.WatchCommitsResponse]:
        """One subscriber's notices until :meth:`close` or the caller goes away."""
        if self._closed:
            return
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            while True:
                await sub.ready.wait()
                sub.ready.clear()
                if sub.closed:
                    return
                notice = keeper_pb2.WatchCommitsResponse(
                    plot_types=sorted(sub.plot_types), reports=sub.reports
                )
                sub.plot_types = set()
                sub.reports = 0
                yield notice
        finally:
            self._subscribers.discard(sub)
