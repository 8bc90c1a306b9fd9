"""A batch's image files: the kept images and heat maps (for labelling) and each plot
type's live ones (for the Run page), under the storage root (``hydra_keeper.storage``).

The batch writer writes them with no database transaction open (no lock waits on the disk),
in parallel (each kept file waits for its fsync, and those waits overlap), and before the
commit that refers to them. Live files a committed batch replaced are deleted only after
``LIVE_FILE_GRACE_SECONDS``: a Run page told about the old file a moment ago can still load
it.
"""

from __future__ import annotations

import asyncio
import time
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
FILE_WRITERS = 8  # threads writing a batch's image files (their fsyncs overlap)


class BatchFiles:
    """Writes batches' files, and deletes replaced live files once their grace is over."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pool: ThreadPoolExecutor | None = None  # made on first use
        self._stale: deque[tuple[float, list[str]]] = deque()  # (due, replaced live files)

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
        if len(todo) > 1:
            # In parallel: each kept file waits for its fsync, and those waits overlap.
            reasons = list(self._file_pool().map(self._store, todo))
        else:
            reasons = [self._store(e) for e in todo]
        return Counter(r for r in reasons if r)

    def _file_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(FILE_WRITERS, thread_name_prefix="keeper-files")
        return self._pool

    def _store(self, e: Entry) -> str:
        """Write one entry's files; '' or, when they cannot be written, the reason."""
        try:
            self._write_entry(e)
            return ""
        except OSError as exc:
            reason = storage.storage_problem(exc)
            log.warning(
                "image not stored",
                extra={"order_id": e.order_id, "reason": reason, "error": str(exc)[:200]},
            )
            for rel in (e.image_path, e.heatmap_path):
                if rel:
                    storage.remove_quietly(self.root, rel)
            e.kept, e.image_path, e.heatmap_path = "", None, None
            e.live_image, e.live_heatmap = "", None
            return reason

    def _write_entry(self, e: Entry) -> None:
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
            storage.write_atomic(root, e.image_path, order.image, durable=True)
            if heat_png is not None:
                e.heatmap_path = storage.kept_heatmap_path(name, e.order_id)
                storage.write_atomic(root, e.heatmap_path, heat_png, durable=True)
        if e.newest:
            e.live_image = storage.live_image_path(name, e.order_id, e.ext)
            storage.write_atomic(root, e.live_image, order.image, durable=False)
            if heat_png is not None:
                e.live_heatmap = storage.live_heatmap_path(name, e.order_id)
                storage.write_atomic(root, e.live_heatmap, heat_png, durable=False)
