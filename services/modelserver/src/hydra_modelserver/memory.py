"""Giving memory back to the system after a big request.

A Predict request of tens of megabytes (a 7,000 x 7,000 plot is a 40 MB PNG) is received by
gRPC's threads and parsed by protobuf in many pieces, each below glibc's mmap threshold, so
they land in the threads' malloc arenas. Freed, they stay in those arenas: the process kept
800 MB after a few such requests (0.7 -> 1.5 GB, ``bench/modelserver_memory.py``) even when
every one of them was refused. ``malloc_trim(0)`` returns the free pages of every arena to
the kernel; ``Trimmer`` calls it shortly after a big request is done (when gRPC has released
the message), at most once per ``delay``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

log = logging.getLogger(__name__)


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.malloc_trim  # noqa: B018  # glibc only (not musl)
    except (OSError, AttributeError):
        return None
    return lib


_LIBC = _libc()


def malloc_trim() -> bool:
    """Return free heap memory to the kernel; False where the C library cannot."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


class Trimmer:
    """Trims the heap ``delay`` seconds after a request of at least ``threshold`` bytes."""

    def __init__(self, threshold: int, delay: float = 0.5) -> None:
        self.threshold = threshold
        self.delay = delay
        self.trims = 0
        self._scheduled: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[bool] | None = None

    def note(self, request_bytes: int) -> None:
        """A request of ``request_bytes`` was handled (call from the event loop)."""
        if request_bytes < self.threshold or self._scheduled is not None:
            return
        loop = asyncio.get_running_loop()
        self._scheduled = loop.call_later(self.delay, self._trim)

    def _trim(self) -> None:
        self._scheduled = None
        if self._running is not None and not self._running.done():
            return
        self._running = asyncio.get_running_loop().create_task(asyncio.to_thread(malloc_trim))
        self._running.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self.trims += 1
        log.debug("heap trimmed after a big request", extra={"released": task.result()})

    def cancel(self) -> None:
        """Drop a pending trim (at shutdown)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
