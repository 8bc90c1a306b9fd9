"""Moving rejected files aside, by reason, with a note saying why."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

NOTE_SUFFIX = ".reason.txt"
NAME_MAX = 200  # characters of a file name we make; well below every file system's limit


def quarantine(path: Path, relative: str, root: Path, reason: str, detail: str = "") -> Path:
    """Move path to ``root/<reason>/<relative>`` (a symlink moves as a link, not its target)
    and write ``<name>.reason.txt`` beside it; returns where the file went."""
    target = root / reason / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        # The same name was quarantined before: keep both.
        stem = target.stem[: NAME_MAX - 32]
        target = target.with_name(f"{stem}.{time.time_ns()}{target.suffix}")
    shutil.move(str(path), str(target))
    # A name near the file-system limit (255 bytes) has no room for the suffix: shorten it.
    note = target.with_name(target.name[: NAME_MAX - len(NOTE_SUFFIX)] + NOTE_SUFFIX)
    note.write_text(
        f"reason: {reason}\n"
        f"detail: {detail}\n"
        f"source: {relative}\n"
        f"time: {datetime.now(UTC).isoformat()}\n",
        errors="backslashreplace",  # a name that is not UTF-8 still gets its note
    )
    return target
