"""Putting back a file quarantined too early: a writer that paused, then finished.

A file is judged once it has held still for ``stable_seconds``. A writer that pauses longer
than that (a slow network disk, a monitoring process that flushes in two steps) gets its
half-written plot quarantined as ``truncated`` (or ``empty``). Moving keeps the inode, so the
writer then finishes the file *inside the quarantine*. ``Requeue`` watches such files for
``requeue_seconds``: one that changes after it was quarantined and then holds still again is
moved back to where it came from, and the feeder judges it afresh like any new file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from hydra_feeder.quarantine import NAME_MAX, NOTE_SUFFIX
from hydra_feeder.scanner import FileStat, stat_file

# Reasons a writer that was not done yet can cause.
UNFINISHED = ("truncated", "empty")


@dataclass
class _Watched:
    rel: str  # where it came from, relative to the input dir
    target: Path  # where it is now
    quarantined: FileStat  # as it was when it was quarantined
    deadline: float
    last: FileStat
    since: float  # when ``last`` was first seen


class Requeue:
    """Quarantined unfinished files, watched until they change and settle, or time out."""

    def __init__(self, root: Path, stable_seconds: float, requeue_seconds: float) -> None:
        self.root = root
        self.stable_seconds = stable_seconds
        self.requeue_seconds = requeue_seconds
        self._watched: dict[Path, _Watched] = {}

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, rel: str, target: Path, reason: str, now: float) -> None:
        """Remember a file just quarantined for ``reason`` (only unfinished ones matter)."""
        if reason not in UNFINISHED or self.requeue_seconds <= 0:
            return
        stat = stat_file(target)
        if stat is not None:
            self._watched[target] = _Watched(
                rel, target, stat, now + self.requeue_seconds, stat, now
            )

    def due(self, now: float) -> list[str]:
        """Move back every watched file that grew and settled; returns their relative paths.

        Blocking (stats and renames): run it in a worker thread."""
        back = []
        for target, w in list(self._watched.items()):
            stat = stat_file(target)
            if stat is None or now > w.deadline:
                del self._watched[target]  # removed by someone, or it never changed
                continue
            if stat != w.last:
                w.last, w.since = stat, now
                continue
            if stat == w.quarantined or now - w.since < self.stable_seconds:
                continue
            del self._watched[target]
            if self._move_back(w):
                back.append(w.rel)
        return back

    def _move_back(self, w: _Watched) -> bool:
        original = self.root / w.rel
        if original.exists() or original.is_symlink():
            return False  # a new file took its place: leave the old one in quarantine
        original.parent.mkdir(parents=True, exist_ok=True)
        os.rename(w.target, original)
        note = w.target.with_name(w.target.name[: NAME_MAX - len(NOTE_SUFFIX)] + NOTE_SUFFIX)
        with contextlib.suppress(OSError):
            note.unlink()
        return True
