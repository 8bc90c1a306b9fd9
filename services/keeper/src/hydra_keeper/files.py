"""A batch's image files: the kept images and heat maps (for labelling) and each plot
type's live ones (for the Run page), under the storage root (``hydra_keeper.storage``).

The batch writer writes them with no database transaction open (no lock waits on the disk),
in parallel, and before the commit that refers to them. The kept files are made durable
together once the batch's files are written (``storage.DurableBatch``: one ``syncfs`` of the
storage volume where Linux allows, instead of an fsync per file). A live file that is also
a kept one is a hard link to it, not a second copy; other live files are written straight
to their final name (``storage.write_new`` says why that is safe). Live files a committed
batch replaced are deleted only after ``LIVE_FILE_GRACE_SECONDS``: a Run page told about the
old file a moment ago can still load it.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hydra_common.logs import get_logger
from hydra_keeper import storage
from hydra_keeper.entries import Entry

log = get_logger(__name__)
# Replaced live files stay this long: a page that was just told about one can still load it.
LIVE_FILE_GRACE_SECONDS = 60.0
clock = time.monotonic  # what the grace is measured with (a test turns it by hand)
FILE_WRITERS = 8  # threads writing a batch's image files and syncing the kept ones


class BatchFiles:
    """Writes batches' files, and deletes replaced live files once their grace is over."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pool: ThreadPoolExecutor | None = None  # made on first use
        self._stale: deque[tuple[float, list[str]]] = deque()  # (due, replaced live files)
        self._root_fd: int | None = None  # the root's syncfs handle (storage.DurableBatch)

    async def write(self, entries: Sequence[Entry]) -> Counter[str]:
        """Write the kept and live files of the entries (in worker threads: Pillow and the
        disk block); sets their paths and returns the files skipped, by reason.

        A file that cannot be written (a full disk above all) costs only the file: the
        verdict is still recorded and acknowledged, the image is not kept (and not counted
        as kept), and the reason is counted. Keeping resumes by itself when space returns.
        """
        return await asyncio.to_thread(self._write_all, entries)

    async def remove_stale(self, replaced: Sequence[str]) -> None:
        """Queue the live files a committed batch replaced, and delete those whose grace
        (``LIVE_FILE_GRACE_SECONDS``) is over."""
        now = clock()
        if replaced:
            self._stale.append((now + LIVE_FILE_GRACE_SECONDS, list(replaced)))
        due: list[str] = []
        while self._stale and self._stale[0][0] <= now:
            due += self._stale.popleft()[1]
        if due:
            await asyncio.to_thread(self._remove, due)

    async def remove_all_stale(self) -> None:
        """At stop: delete every replaced live file still waiting out its grace."""
        due = [rel for _, rels in self._stale for rel in rels]
        self._stale.clear()
        if due:
            await asyncio.to_thread(self._remove, due)

    def _remove(self, rels: list[str]) -> None:
        for rel in rels:
            storage.remove_quietly(self.root, rel)

    def _write_all(self, entries: Sequence[Entry]) -> Counter[str]:
        todo = [e for e in entries if e.report.order.image and (e.kept or e.newest)]
        durable = storage.DurableBatch(self._root_handle())
        pool = self._file_pool() if len(todo) > 1 else None
        try:
            if pool is not None:
                reasons = list(pool.map(lambda e: self._store(e, durable), todo))
            else:
                reasons = [self._store(e, durable) for e in todo]
            # Before the commit that refers to them: the kept files on disk, all at once.
            failed = durable.sync(pool)
        finally:
            durable.close()  # after an unexpected error: no descriptor left open
        if failed:
            for i, e in enumerate(todo):
                exc = next((failed[p] for p in self._kept_files(e) if p in failed), None)
                if exc is not None:
                    reasons[i] = self._not_stored(e, exc, keep_live=True)
        return Counter(r for r in reasons if r)

    def _root_handle(self) -> int | None:
        """A descriptor of the storage root, open for this object's life: ``syncfs`` through
        it reports every write-back error since it was opened. None if it cannot be opened
        (then each kept file is fsynced on its own)."""
        if self._root_fd is None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return None
            weakref.finalize(self, os.close, self._root_fd)
        return self._root_fd

    def _file_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(FILE_WRITERS, thread_name_prefix="keeper-files")
        return self._pool

    def _store(self, e: Entry, durable: storage.DurableBatch) -> str:
        """Write one entry's files; '' or, when they cannot be written, the reason."""
        try:
            self._write_entry(e, durable)
            return ""
        except OSError as exc:
            return self._not_stored(e, exc, keep_live=False)

    def _kept_files(self, e: Entry) -> list[Path]:
        return [self.root / rel for rel in (e.image_path, e.heatmap_path) if rel]

    def _not_stored(self, e: Entry, exc: OSError, keep_live: bool) -> str:
        """An entry whose kept files could not be written or synced: they go, and it is
        not kept; its live files go too unless they were written (``keep_live``: a live
        file need not be durable). The reason, as the metric counts it."""
        reason = storage.storage_problem(exc)
        log.warning(
            "image not stored",
            extra={"order_id": e.order_id, "reason": reason, "error": str(exc)[:200]},
        )
        for rel in (e.image_path, e.heatmap_path):
            if rel:
                storage.remove_quietly(self.root, rel)
        e.kept, e.image_path, e.heatmap_path = "", None, None
        if not keep_live:
            e.live_image, e.live_heatmap = "", None
        return reason

    def _write_entry(self, e: Entry, durable: storage.DurableBatch) -> None:
        root = self.root
        order = e.report.order
        if not order.image or not (e.kept or e.newest):
            return
        name = e.plot_type.name
        e.ext = storage.image_ext(order.source_path, order.image, e.plot_type.file_type)
        heat_png = None
        if e.report.HasField("heat_map") and e.report.heat_map.values:
            heat_png = storage.render_heatmap(e.report.heat_map, storage.image_size(order.image))
        if e.kept:
            e.image_path = storage.kept_image_path(name, e.order_id, e.ext)
            storage.write_atomic(root, e.image_path, order.image, durable)
            if heat_png is not None:
                e.heatmap_path = storage.kept_heatmap_path(name, e.order_id)
                storage.write_atomic(root, e.heatmap_path, heat_png, durable)
        if e.newest:
            # The kept copy's bytes, when there is one: a hard link to it.
            e.live_image = storage.live_image_path(name, e.order_id, e.ext)
            _live(root, e.image_path, e.live_image, order.image)
            if heat_png is not None:
                e.live_heatmap = storage.live_heatmap_path(name, e.order_id)
                _live(root, e.heatmap_path, e.live_heatmap, heat_png)


def _live(root: Path, kept: str | None, rel: str, data: bytes) -> None:
    if kept:
        storage.link_or_write(root, kept, rel, data)
    else:
        storage.write_new(root, rel, data)
