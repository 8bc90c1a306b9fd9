"""How a batch's files reach the disk (``hydra_keeper.files``, ``hydra_keeper.storage``): the
live file of a kept image is a hard link to it, other live files are plain files written in
place, a link that cannot be made falls back to a copy, a name left by an earlier attempt is
replaced, a directory removed underneath is made again, and a kept file that cannot be made
durable costs that file. On a temporary storage root, without a database."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hydra_keeper import storage
from hydra_keeper.entries import Entry
from hydra_keeper.files import BatchFiles

from .conftest import World, make_entry, make_report, png_bytes

WORLD = World("", "pt_links", 1, 7)
HEAT = (2, 2, [0.0, 0.5, 1.0, 0.25])


def _entry(chunk: int, kept: bool, order_id: str | None = None) -> Entry:
    """A confirmed Bad (kept, with its heat map) or Good report's entry, its plot type's
    newest (so it has live files)."""
    weights = (0.1, 0.9) if kept else (0.9, 0.1)
    heat = HEAT if kept else None
    image = png_bytes(64 + chunk, 48)  # each its own bytes
    report = make_report(WORLD, weights, chunk=chunk, image=image, heat=heat, order_id=order_id)
    e = make_entry(WORLD, report)
    e.kept, e.newest = ("bad" if kept else ""), True
    return e


def _same_file(a: Path, b: Path) -> bool:
    """One inode under both names (a hard link)."""
    return os.path.samefile(a, b)


def _other_file_system(than: Path) -> Path | None:
    """A directory on another file system than ``than`` (a tmpfs), if there is one."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shm.stat().st_dev != than.stat().st_dev:
        return shm
    return None


def _leftovers(root: Path) -> list[str]:
    """Temporary files left anywhere under the root."""
    return [p.name for p in root.rglob("*") if p.name.endswith(".tmp")]


async def test_the_live_files_of_a_kept_image_are_hard_links_to_the_kept_ones(
    tmp_path: Path,
) -> None:
    e = _entry(1, kept=True)
    assert not await BatchFiles(tmp_path).write([e])
    assert e.image_path and e.heatmap_path and e.live_image and e.live_heatmap
    kept, live = tmp_path / e.image_path, tmp_path / e.live_image
    assert _same_file(kept, live) and kept.stat().st_nlink == 2
    heat, live_heat = tmp_path / e.heatmap_path, tmp_path / e.live_heatmap
    assert _same_file(heat, live_heat) and heat.stat().st_nlink == 2
    assert live.read_bytes() == e.report.order.image
    assert live_heat.read_bytes().startswith(storage.PNG_SIGNATURE)
    # Either name can go (retention, a replaced live file's grace) without the other.
    live.unlink()
    assert kept.read_bytes() == e.report.order.image and kept.stat().st_nlink == 1
    assert not _leftovers(tmp_path)


async def test_a_live_file_with_no_kept_copy_is_a_plain_file(tmp_path: Path) -> None:
    entries = [_entry(i, kept=False) for i in range(3)]
    assert not await BatchFiles(tmp_path).write(entries)
    for e in entries:
        live = tmp_path / e.live_image
        assert live.read_bytes() == e.report.order.image and live.stat().st_nlink == 1
        assert e.image_path is None
    assert not (tmp_path / "plots").exists() and not _leftovers(tmp_path)


async def test_a_link_refused_by_the_file_system_falls_back_to_a_copy(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A file system without hard links cannot be mounted here: its refusal (EPERM) is
    simulated at the one call that meets it."""

    def link(src: Any, dst: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted", str(dst))

    monkeypatch.setattr(os, "link", link)
    e = _entry(2, kept=True)
    assert not await BatchFiles(tmp_path).write([e])
    assert e.live_image and e.live_heatmap and e.kept == "bad"
    live, kept = tmp_path / e.live_image, tmp_path / str(e.image_path)
    assert not _same_file(live, kept) and live.stat().st_nlink == 1
    assert live.read_bytes() == kept.read_bytes() == e.report.order.image
    live_heat = tmp_path / e.live_heatmap
    assert live_heat.read_bytes() == (tmp_path / str(e.heatmap_path)).read_bytes()


async def test_live_files_on_another_file_system_are_copies(tmp_path: Path) -> None:
    """``live/`` on another file system (a real one: a tmpfs): the link fails with EXDEV."""
    shm = _other_file_system(tmp_path)
    if shm is None:
        pytest.skip("no second file system to put live/ on")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        (tmp_path / "live").symlink_to(other)
        e = _entry(3, kept=True)
        assert not await BatchFiles(tmp_path).write([e])
        live = tmp_path / e.live_image
        assert live.stat().st_dev != (tmp_path / str(e.image_path)).stat().st_dev
        assert live.read_bytes() == e.report.order.image


async def test_a_name_left_by_an_earlier_attempt_is_replaced_whole(tmp_path: Path) -> None:
    """A batch written again after its commit failed (or after a crash in the middle of a
    write) finds its live and kept names taken, by partial files: they are replaced by a
    rename, never truncated and rewritten in place (a page may be reading the old file:
    here a second name of each old file stands for that reader)."""
    kept, plain = _entry(4, kept=True), _entry(5, kept=False)
    assert not await BatchFiles(tmp_path).write([kept, plain])
    names = (kept.live_image, plain.live_image, str(kept.image_path))
    for i, rel in enumerate(names):
        (tmp_path / rel).unlink()
        (tmp_path / rel).write_bytes(b"\x89PNG half")
        os.link(tmp_path / rel, tmp_path / f"reader{i}")
    again = [_entry(4, kept=True, order_id=kept.order_id), _entry(5, False, plain.order_id)]
    assert not await BatchFiles(tmp_path).write(again)
    assert (tmp_path / kept.live_image).read_bytes() == kept.report.order.image
    assert (tmp_path / str(kept.image_path)).read_bytes() == kept.report.order.image
    assert (tmp_path / plain.live_image).read_bytes() == plain.report.order.image
    for i in range(len(names)):
        assert (tmp_path / f"reader{i}").read_bytes() == b"\x89PNG half"
    assert not _leftovers(tmp_path)


async def test_a_directory_removed_underneath_is_made_again(tmp_path: Path) -> None:
    batch_files = BatchFiles(tmp_path)
    assert not await batch_files.write([_entry(6, kept=True), _entry(7, kept=False)])
    for top in ("live", "plots", "heatmaps"):
        shutil.rmtree(tmp_path / top)  # an operator's clean-up, say
    later = [_entry(8, kept=True), _entry(9, kept=False)]
    assert not await batch_files.write(later)
    for e in later:
        assert (tmp_path / e.live_image).read_bytes() == e.report.order.image
    assert (tmp_path / str(later[0].image_path)).read_bytes() == later[0].report.order.image
    assert (tmp_path / str(later[0].heatmap_path)).is_file()


async def test_a_kept_file_that_cannot_be_made_durable_is_not_kept(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A write-back error (a failing disk: none can be had here) reported by the batch's
    sync: the batch's kept files go and are counted, their live files stay (a live file
    need not be durable), and the next batch keeps again."""
    if storage._syncfs is None:
        pytest.skip("no syncfs here: each file is fsynced (tested below)")

    def failing_syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(storage, "_syncfs", failing_syncfs)
    batch_files = BatchFiles(tmp_path)
    entries = [_entry(10, kept=True), _entry(11, kept=False)]
    assert await batch_files.write(entries) == {"io_error": 1}
    e = entries[0]
    assert (e.kept, e.image_path, e.heatmap_path) == ("", None, None)
    assert (tmp_path / e.live_image).read_bytes() == e.report.order.image
    for top in ("plots", "heatmaps"):
        assert not [p for p in (tmp_path / top).rglob("*") if p.is_file()]
    assert (tmp_path / entries[1].live_image).is_file()
    monkeypatch.undo()
    later = _entry(12, kept=True)
    assert not await batch_files.write([later])
    assert later.kept == "bad" and (tmp_path / str(later.image_path)).is_file()


@pytest.mark.parametrize("unsupported", ["no syncfs", "ENOSYS"])
async def test_without_syncfs_each_kept_file_is_synced(
    tmp_path: Path, monkeypatch: Any, unsupported: str
) -> None:
    """Where there is no ``syncfs`` (or it answers ENOSYS), each file and its directory is
    fsynced: the files are still written, kept and linked."""
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    def enosys(fd: int) -> int:
        ctypes.set_errno(errno.ENOSYS)
        return -1

    monkeypatch.setattr(storage, "_syncfs", None if unsupported == "no syncfs" else enosys)
    monkeypatch.setattr(os, "fsync", fsync)
    entries = [_entry(13, kept=True), _entry(14, kept=True), _entry(15, kept=False)]
    assert not await BatchFiles(tmp_path).write(entries)
    for e in entries[:2]:
        assert e.kept == "bad"
        kept, live = tmp_path / str(e.image_path), tmp_path / e.live_image
        assert kept.read_bytes() == e.report.order.image and _same_file(kept, live)
    # Two images and two heat maps, and their directories (plots/…/day, heatmaps/…/day) and
    # the directories made for them (their parents, up to the root).
    assert len(synced) >= 4 + 2


def test_a_durable_write_on_its_own_makes_its_directories(tmp_path: Path) -> None:
    root = tmp_path / "storage"  # not there yet
    storage.write_atomic(root, "shadow/pt/2026-01-01/x.png", b"data", durable=True)
    assert (root / "shadow/pt/2026-01-01/x.png").read_bytes() == b"data"
    assert not _leftovers(root)
