"""A size-limited file system that a drill fills up: the image storage volume running full.

``SmallVolume`` mounts a ``tmpfs`` of a few megabytes (this needs the right to mount: root,
or CAP_SYS_ADMIN in a container); ``fill()`` writes a filler file until the kernel answers
ENOSPC, ``free()`` deletes it again. Every write the services make meanwhile fails as it
would on a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

FILLER = ".drill-filler"
CHUNK = 256 * 1024


class SmallVolume:
    """A tmpfs of ``size_mb`` mounted at ``path``."""

    def __init__(self, path: Path, size_mb: int = 64) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    def mount(self) -> str:
        """Mount it; returns an empty string, or why it could not be mounted."""
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={self.size_mb}m,mode=0700",
                "tmpfs",
                str(self.path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {(done.stderr or done.stdout).strip()[:200]}"
        self.mounted = True
        return ""

    def fill(self) -> int:
        """Write the filler until the volume is full; returns the bytes written."""
        written = 0
        fd = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (CHUNK, 4096, 512):  # big pieces, then the last crumbs
                block = b"\0" * size
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def is_full(self) -> bool:
        """True while less than 64 KiB is free."""
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize < 64 * 1024

    def free(self) -> None:
        """Delete the filler: the space returns."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / FILLER).unlink()

    def unmount(self) -> None:
        """Unmount (lazily, should a service still hold a file open)."""
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self.mounted = False
