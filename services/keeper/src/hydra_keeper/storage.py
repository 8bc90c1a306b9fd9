"""Image and heat-map files under the storage root (layout: docs/contracts.md).

Files are written always before the database commit that refers to them: a crash leaves
at worst an orphan file, never a row without its file. Kept files go through a temporary
name and a rename (``write_atomic``) and are durable before that commit (``DurableBatch``);
live files are written straight to their new, unique name (``write_new``), or are a hard
link to the kept file with the same bytes (``link_or_write``). No stored file is ever
rewritten in place: a name is replaced by a rename or deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import re
import struct
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hydra.v1 import report_pb2
from PIL import Image

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_IMAGE_EXTS = {"png", "jpg", "jpeg", "gif", "bmp", "webp"}


def safe_name(name: str) -> str:
    """A name usable as one path element (no separators, no leading dot)."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned or "_"


def image_ext(source_path: str, image: bytes, fallback: str) -> str:
    """The image's file extension: from its source path, else from its bytes, else fallback."""
    suffix = source_path.rpartition(".")[2].lower() if "." in source_path else ""
    if suffix in _IMAGE_EXTS:
        return suffix
    if image.startswith(b"\x89PNG"):
        return "png"
    if image.startswith(b"\xff\xd8"):
        return "jpg"
    return safe_name(fallback.lower() or "png")


def order_day(order_id: str) -> str:
    """The UTC day of a UUIDv7 order id (so a replayed report maps to the same path)."""
    try:
        ms = uuid.UUID(order_id).int >> 80
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC).strftime("%Y-%m-%d")


def kept_image_path(plot_type: str, order_id: str, ext: str) -> str:
    """Relative path of an image kept for labelling."""
    return f"plots/{safe_name(plot_type)}/{order_day(order_id)}/{safe_name(order_id)}.{ext}"


def kept_heatmap_path(plot_type: str, order_id: str) -> str:
    """Relative path of a kept image's heat-map overlay."""
    return f"heatmaps/{safe_name(plot_type)}/{order_day(order_id)}/{safe_name(order_id)}.png"


def live_image_path(plot_type: str, order_id: str, ext: str) -> str:
    """Relative path of the Run page's latest image of a plot type."""
    return f"live/{safe_name(plot_type)}/{safe_name(order_id)}.{ext}"


def live_heatmap_path(plot_type: str, order_id: str) -> str:
    """Relative path of the Run page's latest heat-map overlay of a plot type."""
    return f"live/{safe_name(plot_type)}/{safe_name(order_id)}.heatmap.png"


def _parents_made(path: Path) -> list[Path]:
    """Make ``path``'s missing parent directories; the ones made, outermost first (a durable
    write must also sync the directories that now hold them)."""
    made: list[Path] = []
    parent = path.parent
    while not parent.is_dir() and parent != parent.parent:  # the root itself may be new
        made.append(parent)
        parent = parent.parent
    for d in reversed(made):
        with contextlib.suppress(FileExistsError):  # another thread made it meanwhile
            d.mkdir()
    return list(reversed(made))


def _create(path: Path, exclusive: bool) -> tuple[int, list[Path]]:
    """Open ``path`` for writing, created (``exclusive``: it must not exist yet); the file
    descriptor and the directories made for it.

    The directory is not made first for every file: most exist, and a failed open says which
    do not. One removed underneath (an operator, a sweep) is simply made again."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    made: list[Path] = []
    for _ in range(3):  # a directory removed again between the mkdir and the open: retry
        try:
            return os.open(path, flags, 0o644), made
        except FileNotFoundError:
            made += _parents_made(path)
    return os.open(path, flags, 0o644), made


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's ``syncfs(fd)``, when it reports write-back errors (Linux 5.8 and later: before,
    it returns 0 whatever happened, and a durable write must hear of a failure)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        major, minor = (int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
        if (major, minor) < (5, 8):
            return None
        syncfs: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ValueError):
        return None
    return syncfs


_syncfs = _load_syncfs()


class DurableBatch:
    """Files that must be durable before one database commit, made durable together.

    Passed as ``durable`` to ``write_atomic``: the file is written and renamed into place at
    once, and its sync is left to ``sync()``, which the writer calls after the batch's last
    file and before the commit. Durable still means durable: ``sync()`` returns only once
    every file's data and directory entry (and those of any directory made for it) are on
    disk, so the database row that follows never points at a file a power cut could lose.
    Until then no row refers to them: a crash before the commit leaves at worst orphans.

    With ``root_fd`` (a descriptor of the storage root, open since before the batch's files
    were written) and on Linux 5.8 or later, ``sync()`` is one ``syncfs`` of the root's file
    system: it writes back everything dirty there, directories included, and reports any
    write-back error since that descriptor was opened (then every file of the batch counts
    as failed: the error cannot be pinned on one). Chosen by measurement: writing the
    keeper bench's batches (34 reports, 10 % kept, all live) on this project's ext4 took
    0.37-0.91 CPU ms and 0.42-0.98 ms wall per report with a ``syncfs`` per batch, against
    1.05-1.21 and 0.76-1.16 with an fsync per file (then per directory), and 1.20-1.30 and
    1.26-3.19 before (an fsync per file, a copy per live file). One cache flush per batch
    instead of one per file and directory; and the volume's metadata is written back every
    batch instead of piling up dirty: on ext4 without a journal (this machine's), a deleted
    inode is not reused for 6 minutes while its inode-table block is dirty (1 once written),
    and every file created scans past those (``perf``: ``find_inode_bit`` /
    ``recently_deleted`` were most of a live file's kernel time). Its cost is
    the volume's whole dirty data, not only the batch's: the storage root belongs on a volume
    of its own (the live files the batch just wrote go too; they would be written back within
    seconds anyway). A write-back error elsewhere on the volume costs a batch's kept images.

    Elsewhere (or when ``syncfs`` fails as unsupported) each file is fsynced, through the
    descriptor it was written with, and then each directory once, in the writer's pool.
    """

    def __init__(self, root_fd: int | None = None) -> None:
        self._root_fd = root_fd if _syncfs is not None else None
        self._files: list[tuple[Path, int]] = []  # (path, its open descriptor or -1)
        self._dirs: set[Path] = set()

    def add(self, path: Path, fd: int, made: list[Path]) -> None:
        """A file written and renamed into place, its descriptor still open; the batch
        closes it (after syncing through it, unless the file system is synced whole)."""
        if self._root_fd is not None:
            os.close(fd)
            fd = -1
        self._files.append((path, fd))
        self._dirs.add(path.parent)
        self._dirs.update(d.parent for d in made)

    def sync(self, pool: Executor | None = None) -> dict[Path, OSError]:
        """Make the files durable and close them; those that could not be, with the error."""
        if not self._files:
            return {}
        if self._root_fd is not None and _syncfs is not None:
            files, self._files, self._dirs = self._files, [], set()
            if _syncfs(self._root_fd) == 0:
                return {}
            err = ctypes.get_errno()
            if err not in (errno.ENOSYS, errno.EINVAL):
                exc = OSError(err, f"syncfs: {os.strerror(err)}")
                return {path: exc for path, _ in files}
            # Not supported after all: sync each file (reopened: descriptors are closed).
            self._root_fd = None
            self._files = [(path, -1) for path, _ in files]
            self._dirs = {path.parent for path, _ in files}
        return self._sync_each(pool)

    def _sync_each(self, pool: Executor | None) -> dict[Path, OSError]:
        """fsync each file, then each directory (a directory that cannot be synced fails
        every file under it). Running in the pool, the fsyncs overlap."""
        files, dirs = self._files, sorted(self._dirs)
        self._files, self._dirs = [], set()
        mapper: Callable[..., Iterable[OSError | None]] = pool.map if pool else map
        failed = {
            path: exc
            for (path, _), exc in zip(files, mapper(_fsync_closing, files), strict=True)
            if exc is not None
        }
        for d, exc in zip(dirs, mapper(_fsync_dir_quietly, dirs), strict=True):
            if exc is not None:
                failed.update({path: exc for path, _ in files if path.is_relative_to(d)})
        return failed

    def close(self) -> None:
        """Close the descriptors of files not synced (a batch abandoned on an error)."""
        files, self._files, self._dirs = self._files, [], set()
        for _, fd in files:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _fsync_closing(file: tuple[Path, int]) -> OSError | None:
    path, fd = file
    try:
        if fd < 0:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.fsync(fd)
        return None
    except OSError as exc:
        return exc
    finally:
        if fd >= 0:
            os.close(fd)


def _fsync_dir_quietly(path: Path) -> OSError | None:
    try:
        _fsync_dir(path)
        return None
    except OSError as exc:
        return exc


def write_atomic(root: Path, rel: str, data: bytes, durable: bool | DurableBatch) -> None:
    """Write ``data`` to ``root/rel`` through a temporary file and a rename.

    ``durable`` files (kept for labelling) are on disk before this returns (the file, then
    the directory entry of its rename), since the database row that follows must never
    point at a file a power cut could lose; with a ``DurableBatch`` they are once its
    ``sync()`` returns. Live files are replaced within seconds anyway.
    """
    path = root / rel
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    batch = durable if isinstance(durable, DurableBatch) else None
    fd = -1
    try:
        fd, made = _create(tmp, exclusive=False)
        _write_fd(fd, data)
        if durable and batch is None:
            os.fsync(fd)
        os.replace(tmp, path)
    except OSError:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk must not keep half-written files either
        raise
    if batch is not None:
        batch.add(path, fd, made)  # synced and closed by the batch
        return
    os.close(fd)
    if durable:
        for d in {path.parent, *(m.parent for m in made)}:
            _fsync_dir(d)


def write_new(root: Path, rel: str, data: bytes) -> None:
    """Write a live file (not durable) straight to its final name, no temporary file.

    A live file's name is unique to its order id, and the Run page learns of it only from the
    commit that follows this write: a crash in the middle leaves a partial file no row names,
    which nothing serves. The file is created exclusively, so a name that exists already (a
    batch written again after its commit failed, or after a crash left that partial file)
    is replaced through ``write_atomic`` instead: a file a committed row may name is never
    truncated in place, and a partial one never survives a replay.
    """
    path = root / rel
    try:
        fd, _ = _create(path, exclusive=True)
    except FileExistsError:
        write_atomic(root, rel, data, durable=False)
        return
    try:
        _write_fd(fd, data)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()  # ours (created exclusively): a full disk keeps no partial file
        raise
    os.close(fd)


def link_or_write(root: Path, existing: str, rel: str, data: bytes) -> bool:
    """Make ``root/rel`` a hard link to ``root/existing`` (the same bytes, already written),
    else write ``data`` there (``write_new``); whether it was linked.

    Linking costs a directory entry instead of a file's allocation and data. It fails on
    another file system (EXDEV), one without hard links (EPERM), at the link limit
    (EMLINK), or when the name exists already (a replay): then the bytes are written.
    Nothing writes a stored file in place (they are replaced or deleted), so the two names
    never diverge, and deleting either (retention, a replaced live file) leaves the other.
    """
    src, path = root / existing, root / rel
    for _ in range(3):  # a directory removed again between the mkdir and the link: retry
        try:
            os.link(src, path)
            return True
        except FileNotFoundError:
            if not src.exists() or not _parents_made(path):
                break  # the source is gone, or nothing was missing: write
        except OSError:
            break
    write_new(root, rel, data)
    return False


def storage_problem(exc: OSError) -> str:
    """The reason a file could not be written, as the metric names it."""
    return "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"


def remove_quietly(root: Path, rel: str) -> None:
    """Delete a stored file; a file already gone is fine."""
    try:
        (root / rel).unlink()
    except FileNotFoundError:
        pass


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(image: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header, or None if it cannot be read.

    A PNG's size is read from its IHDR chunk directly: Pillow's decompression-bomb guard is a
    process-wide setting, and a heat map must not depend on it."""
    if image[:8] == PNG_SIGNATURE and image[12:16] == b"IHDR" and len(image) >= 24:
        width, height = struct.unpack(">II", image[16:24])
        return (width, height) if width and height else None
    try:
        with Image.open(io.BytesIO(image)) as im:
            return im.size
    except Exception:
        return None


# Control points of the colour map: blue (cold) → cyan → green → yellow → red (hot).
_STOPS = (0.0, 0.25, 0.5, 0.75, 1.0)
_RED = (0.0, 0.0, 0.0, 1.0, 1.0)
_GREEN = (0.0, 1.0, 1.0, 1.0, 0.0)
_BLUE = (1.0, 1.0, 0.0, 0.0, 0.0)


def _colormap(heat: np.ndarray) -> np.ndarray:
    """0..1 heat → 0..1 RGB along the blue-to-red colour map."""
    return np.stack([np.interp(heat, _STOPS, c) for c in (_RED, _GREEN, _BLUE)], axis=-1)


# The overlay is stretched over the image by the browser: its own resolution need not be the
# image's. A 7000 x 7000 plot must not become a 7000 x 7000 RGBA heat map (196 MB in memory).
MAX_HEATMAP_SIDE = 1024


def bounded(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``size`` scaled down (aspect kept) so its longest side is at most ``longest``."""
    w, h = size
    if max(w, h) <= longest:
        return size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def render_heatmap(heat_map: report_pb2.HeatMap, size: tuple[int, int] | None) -> bytes | None:
    """An RGBA PNG overlay of a Grad-CAM map: colour by heat, alpha proportional to heat.

    The map is upscaled (bilinear) to ``size`` (the image's width, height), or kept at its
    own size when the image size is unknown. Returns None for an empty or inconsistent map.
    """
    h, w = int(heat_map.height), int(heat_map.width)
    if h <= 0 or w <= 0 or len(heat_map.values) != h * w:
        return None
    heat = np.asarray(heat_map.values, dtype=np.float32).reshape(h, w)
    heat = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = (_colormap(heat) * 255.0 + 0.5).astype(np.uint8)
    rgba[..., 3] = (heat * 255.0 + 0.5).astype(np.uint8)
    overlay = Image.fromarray(rgba)
    if size is not None:
        size = bounded(size, MAX_HEATMAP_SIDE)
        if size != (w, h):
            overlay = overlay.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    overlay.save(out, format="PNG", compress_level=3)
    return out.getvalue()
