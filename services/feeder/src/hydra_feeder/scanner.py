"""Finding files in the input directory and telling when they are complete.

A file is *stable* once its size and mtime have not changed for ``stable_seconds`` of
observation; only then is it read (the monitoring may still be writing it). Observations
come from inotify events (``watchfiles``) and from full rescans (NFS gives no events).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple


class FileStat(NamedTuple):
    """What a file looked like when observed.

    A tuple: every rescan makes one per file in the input (thousands) and compares it with
    the last, and a tuple is made and compared in C, a dataclass in Python.
    """

    size: int
    mtime_ns: int


def stat_file(path: Path) -> FileStat | None:
    """The file's size and mtime (following a symlink); None for directories and the missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return FileStat(st.st_size, st.st_mtime_ns)


def walk(root: Path, exclude: Path | None = None) -> dict[str, FileStat]:
    """Every regular file (or symlink to one) under root, by relative POSIX path.

    Symlinked directories are not followed (no loops, no escapes); hidden entries (names
    starting with a dot: editors' and rsync's temporary files) are left out.
    """
    # Runs every rescan over every file the input holds (thousands): plain strings, no Path
    # per entry (that was two thirds of its CPU).
    found: dict[str, FileStat] = {}
    top = os.fspath(root)
    skip = os.path.normpath(exclude) if exclude is not None else None
    cut = len(os.path.join(top, ""))
    stack = [top]
    while stack:
        directory = stack.pop()
        if skip is not None and os.path.normpath(directory) == skip:
            continue
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue  # vanished or unreadable: the next rescan will tell
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    st = entry.stat(follow_symlinks=True)
                    rel = entry.path[cut:]
                    if os.sep != "/":
                        rel = rel.replace(os.sep, "/")
                    found[rel] = FileStat(st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return found


# How far the file server's clock may be ahead of or behind the feeder's (NFS).
CLOCK_SKEW_SECONDS = 2.0


class StabilityTracker:
    """Remembers each file's last observation until it has held still long enough."""

    def __init__(self, stable_seconds: float) -> None:
        self.stable_seconds = stable_seconds
        self._seen: dict[str, tuple[FileStat, float]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, rel: str, stat: FileStat, now: float, wall: float | None = None) -> None:
        """Record an observation; a change restarts the file's clock.

        A file seen for the first time whose modification time is already older than
        ``stable_seconds`` plus ``CLOCK_SKEW_SECONDS`` (the file server's clock against
        ours) has held still long enough: nobody is writing it, so it is ready at once
        (a plot moved into place whole, a backlog found after a restart).
        """
        previous = self._seen.get(rel)
        if previous is None or previous[0] != stat:
            since = now
            wall = time.time() if wall is None else wall
            if previous is None and wall - stat.mtime_ns / 1e9 >= (
                self.stable_seconds + CLOCK_SKEW_SECONDS
            ):
                since = now - self.stable_seconds
            self._seen[rel] = (stat, since)

    def forget(self, rel: str) -> None:
        """Stop tracking a file."""
        self._seen.pop(rel, None)

    def keep_only(self, present: set[str] | dict[str, FileStat]) -> None:
        """Drop files that a full rescan no longer found."""
        for rel in [r for r in self._seen if r not in present]:
            del self._seen[rel]

    def next_ready(self) -> float | None:
        """When the first tracked file will have held still long enough (None: none tracked)."""
        if not self._seen:
            return None
        return min(since for _stat, since in self._seen.values()) + self.stable_seconds

    def take_ready(self, now: float) -> list[tuple[str, FileStat]]:
        """Remove and return the files that held still for ``stable_seconds``."""
        ready = [
            (rel, stat)
            for rel, (stat, since) in self._seen.items()
            if now - since >= self.stable_seconds
        ]
        for rel, _ in ready:
            del self._seen[rel]
        return ready
