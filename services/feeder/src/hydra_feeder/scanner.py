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
    return Walker(root, exclude).scan(full=True).files


# How far the file server's clock may be ahead of or behind the feeder's (NFS).
CLOCK_SKEW_SECONDS = 2.0

# A directory listing is reused only once the directory's mtime is this much older than the
# listing: the kernel's file-time clock ticks every few milliseconds, so an entry added in the
# same tick as an earlier one leaves the mtime as it was (git's "racy" index entries).
TRUST_AFTER_SECONDS = CLOCK_SKEW_SECONDS + 1.0


class Scan(NamedTuple):
    """What one rescan found, against what the walker knew from the walk before.

    ``files``: every file on a full walk; on a quick one, only those new or changed since
    (the ones asked to be stat'ed again always, changed or not). ``gone``: files known before
    and not found now.
    """

    files: dict[str, FileStat]
    gone: set[str]
    full: bool


class _Listing(NamedTuple):
    key: tuple[int, int, int]  # the directory's inode, mtime and ctime when it was listed
    trusted: bool  # its mtime was old enough then for an unchanged one to mean "unchanged"
    files: dict[str, FileStat]  # by relative path
    subdirs: list[str]  # absolute paths


class Walker:
    """Rescans that re-read only the directories whose mtime changed since the last walk.

    A file created, renamed or removed changes its directory's mtime, so an unchanged
    directory holds the same names as before and its listing (with its files' stats) is
    reused: a quick rescan costs a stat per directory, not per file. What it cannot see is a
    file rewritten in place, or replaced by a rename over it in a directory listed again only
    for another entry: inotify reports those at once, and the full walk (every file stat'ed,
    as ``walk``) finds them on a file system without events. Files not yet stable are passed
    in ``restat``: they are stat'ed on every rescan, quick or full, so a file still being
    written never looks still.
    """

    def __init__(self, root: Path, exclude: Path | None = None) -> None:
        self._top = os.fspath(root)
        self._skip = os.path.normpath(exclude) if exclude is not None else None
        self._cut = len(os.path.join(self._top, ""))
        self._listings: dict[str, _Listing] = {}

    def scan(self, full: bool, restat: set[str] | frozenset[str] = frozenset()) -> Scan:
        """Walk the tree (re-reading every directory when ``full``); blocking, so run it in a
        worker thread. Returns what changed since the last scan."""
        changed: dict[str, FileStat] = {}
        gone: set[str] = set()
        listings: dict[str, _Listing] = {}
        relisted: set[str] = set()
        wall = time.time()
        stack = [self._top]
        while stack:
            directory = stack.pop()
            if self._skip is not None and os.path.normpath(directory) == self._skip:
                continue
            try:
                st = os.stat(directory)
            except OSError:
                continue  # vanished or unreadable: its files count as gone
            key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            old = self._listings.get(directory)
            if not full and old is not None and old.trusted and old.key == key:
                listings[directory] = old
                stack.extend(old.subdirs)
                continue
            files = self._list(directory)
            if files is None:
                continue
            found, subdirs = files
            trusted = wall - st.st_mtime_ns / 1e9 > TRUST_AFTER_SECONDS
            listings[directory] = _Listing(key, trusted, found, subdirs)
            relisted.add(directory)
            stack.extend(subdirs)
            before = old.files if old is not None else {}
            for rel, stat in found.items():
                if full or before.get(rel) != stat:
                    changed[rel] = stat
            gone.update(rel for rel in before if rel not in found)
        for directory, listing in self._listings.items():
            if directory not in listings:
                gone.update(listing.files)  # the directory went, or is unreadable now
        self._listings = listings
        for rel in restat:
            self._restat(rel, relisted, changed, gone)
        return Scan(changed, gone, full)

    def _restat(
        self, rel: str, relisted: set[str], changed: dict[str, FileStat], gone: set[str]
    ) -> None:
        """Stat one file again, wherever the walk left it: its fresh stat goes into
        ``changed`` (changed or not), or it is gone."""
        path = os.path.join(self._top, rel)
        directory = os.path.dirname(path)
        if directory in relisted:
            if rel not in changed:
                fresh = self._listings[directory].files.get(rel)
                if fresh is not None:
                    changed[rel] = fresh
                else:
                    gone.add(rel)
            return
        stat = stat_file(Path(path))
        listing = self._listings.get(directory)
        if stat is None:
            gone.add(rel)
            if listing is not None:
                listing.files.pop(rel, None)
            return
        changed[rel] = stat
        if listing is not None:
            listing.files[rel] = stat

    def _list(self, directory: str) -> tuple[dict[str, FileStat], list[str]] | None:
        """A directory's files (stat'ed) and subdirectories; None when it cannot be read."""
        # Plain strings, no Path per entry: this runs over thousands of files.
        found: dict[str, FileStat] = {}
        subdirs: list[str] = []
        cut = self._cut
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            return None  # vanished or unreadable: the next rescan will tell
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    st = entry.stat(follow_symlinks=True)
                    rel = entry.path[cut:]
                    if os.sep != "/":
                        rel = rel.replace(os.sep, "/")
                    found[rel] = FileStat(st.st_size, st.st_mtime_ns)
            except OSError:
                continue
        return found, subdirs


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

    def paths(self) -> set[str]:
        """The files tracked now."""
        return set(self._seen)

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
