"""A batch's image files (``hydra_keeper.files``): kept and live files, a write that fails,
and the grace of a replaced live file. On a temporary storage root, without a database."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from hydra_keeper import files, storage
from hydra_keeper.files import BatchFiles

from .conftest import World, make_entry, make_report, png_bytes

WORLD = World("", "pt_files", 1, 7)
HEAT = (2, 2, [0.0, 0.5, 1.0, 0.25])


async def test_kept_and_live_files_are_written_and_their_paths_set(tmp_path: Path) -> None:
    image = png_bytes()
    kept = make_entry(WORLD, make_report(WORLD, (0.1, 0.9), image=image, heat=HEAT))
    kept.kept, kept.newest = "bad", True
    neither = make_entry(WORLD, make_report(WORLD, (0.9, 0.1), image=image))
    skipped = await BatchFiles(tmp_path).write([kept, neither])
    assert not skipped
    assert kept.image_path and kept.heatmap_path and kept.live_image and kept.live_heatmap
    assert kept.image_path.startswith("plots/") and kept.live_image.startswith("live/")
    assert (tmp_path / kept.image_path).read_bytes() == image
    assert (tmp_path / kept.live_image).read_bytes() == image
    assert (tmp_path / kept.heatmap_path).read_bytes().startswith(storage.PNG_SIGNATURE)
    # Neither kept nor newest: no file at all.
    assert (neither.image_path, neither.live_image) == (None, "")
    assert sorted(p.name for p in (tmp_path / "live" / WORLD.plot_type).iterdir()) == sorted(
        [Path(kept.live_image).name, Path(kept.live_heatmap).name]
    )


async def test_a_file_that_cannot_be_written_costs_the_file_and_says_why(
    tmp_path: Path, monkeypatch: Any
) -> None:
    real_write = storage.write_atomic

    def write_atomic(root: Path, rel: str, data: bytes, durable: bool) -> None:
        if durable:  # the kept files: a full disk
            raise OSError(errno.ENOSPC, "No space left on device", rel)
        real_write(root, rel, data, durable)

    monkeypatch.setattr(storage, "write_atomic", write_atomic)
    entries = [
        make_entry(WORLD, make_report(WORLD, (0.1, 0.9), chunk=i, image=png_bytes()))
        for i in range(3)
    ]
    for e in entries:
        e.kept = "bad"
    skipped = await BatchFiles(tmp_path).write(entries)
    assert skipped == {"disk_full": 3}
    assert [(e.kept, e.image_path, e.heatmap_path) for e in entries] == [("", None, None)] * 3


async def test_a_replaced_live_file_goes_after_its_grace(tmp_path: Path, monkeypatch: Any) -> None:
    now = [100.0]  # a clock the test turns: no wall-time assumption
    monkeypatch.setattr(files, "clock", lambda: now[0])
    monkeypatch.setattr(files, "LIVE_FILE_GRACE_SECONDS", 10.0)
    old, later = tmp_path / "live" / "old.png", tmp_path / "live" / "later.png"
    old.parent.mkdir()
    old.write_bytes(b"x")
    later.write_bytes(b"y")
    batch_files = BatchFiles(tmp_path)
    await batch_files.remove_stale(["live/old.png"])
    now[0] += 9.0
    await batch_files.remove_stale(["live/later.png"])
    assert old.exists() and later.exists()  # both within their grace
    now[0] += 1.0
    await batch_files.remove_stale([])
    assert not old.exists() and later.exists()
    await batch_files.remove_all_stale()  # at stop: the rest at once
    assert not later.exists()
