"""The rescans' walk: relative POSIX paths, hidden entries, the excluded quarantine,
symlinked directories not followed; the quick rescan re-reads only the directories whose mtime
changed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from hydra_feeder.scanner import FileStat, Scan, Walker, walk


def test_walk_finds_files_by_relative_path_and_skips_what_it_must(tmp_path: Path) -> None:
    root = tmp_path / "input"
    (root / "RunPeriod-2026-01" / "Run7000").mkdir(parents=True)
    (root / "RunPeriod-2026-01" / "Run7000" / "CDC_occ.png").write_bytes(b"x" * 7)
    (root / "top.png").write_bytes(b"")
    (root / ".tmp.png").write_bytes(b"hidden")
    (root / ".rsync").mkdir()
    (root / ".rsync" / "partial.png").write_bytes(b"hidden")
    (root / "quarantine" / "bad").mkdir(parents=True)
    (root / "quarantine" / "bad" / "q.png").write_bytes(b"q")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "outside.png").write_bytes(b"o")
    os.symlink(elsewhere, root / "linked_dir")
    os.symlink(elsewhere / "outside.png", root / "linked_file.png")

    # The quarantine given un-normalised still counts as the same directory.
    found = walk(root, root / "RunPeriod-2026-01" / ".." / "quarantine")

    assert sorted(found) == ["RunPeriod-2026-01/Run7000/CDC_occ.png", "linked_file.png", "top.png"]
    cdc = found["RunPeriod-2026-01/Run7000/CDC_occ.png"]
    st = (root / "RunPeriod-2026-01" / "Run7000" / "CDC_occ.png").stat()
    assert cdc == FileStat(7, st.st_mtime_ns)
    assert found["linked_file.png"].size == 1  # a symlink to a file: the file's stat
    assert "quarantine/bad/q.png" in walk(root)  # without the exclusion it is found
    assert walk(tmp_path / "missing") == {}


# --- the quick rescan: only directories whose mtime changed are read again ------------------


def age(path: Path, seconds: float = 60.0) -> None:
    """Set a file's or directory's mtime ``seconds`` back (a directory long unchanged)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_an_unchanged_directory_is_not_read_again_until_the_full_walk(tmp_path: Path) -> None:
    run = tmp_path / "Run7"
    run.mkdir()
    (run / "A.png").write_bytes(b"a")
    age(run)
    walker = Walker(tmp_path)
    first = walker.scan(full=True)
    assert set(first.files) == {"Run7/A.png"} and first.full
    (run / "A.png").write_bytes(b"rewritten")  # in place: the directory's mtime stays
    assert walker.scan(full=False) == Scan({}, set(), False)  # its listing was reused
    full = walker.scan(full=True)
    assert full.files["Run7/A.png"].size == len(b"rewritten")


def test_a_changed_directory_is_read_again(tmp_path: Path) -> None:
    run = tmp_path / "Run7"
    run.mkdir()
    (run / "A.png").write_bytes(b"a")
    (run / "B.png").write_bytes(b"b")
    age(run)
    walker = Walker(tmp_path)
    walker.scan(full=True)
    (run / "C.png").write_bytes(b"c")  # a new file: the directory's mtime moves
    (run / "B.png").unlink()
    quick = walker.scan(full=False)
    assert set(quick.files) == {"Run7/C.png"}  # A.png is as it was: not reported
    assert quick.gone == {"Run7/B.png"}
    (tmp_path / "Run8" / "deep").mkdir(parents=True)  # the top directory changed
    (tmp_path / "Run8" / "deep" / "D.png").write_bytes(b"d")
    assert set(walker.scan(full=False).files) == {"Run8/deep/D.png"}
    shutil.rmtree(run)
    assert walker.scan(full=False).gone == {"Run7/A.png", "Run7/C.png"}


def test_a_directory_changed_within_the_clock_tick_of_its_listing_is_read_again(
    tmp_path: Path,
) -> None:
    """A file added in the same tick of the kernel's file-time clock as the listing leaves
    the directory's mtime as it was: a listing taken while the mtime was recent is not
    trusted, so the next quick rescan reads the directory again."""
    run = tmp_path / "Run7"
    run.mkdir()
    (run / "A.png").write_bytes(b"a")
    walker = Walker(tmp_path)
    walker.scan(full=True)
    listed = os.stat(run)
    (run / "B.png").write_bytes(b"b")
    os.utime(run, ns=(listed.st_atime_ns, listed.st_mtime_ns))  # the same tick
    assert os.stat(run).st_mtime_ns == listed.st_mtime_ns
    assert set(walker.scan(full=False).files) == {"Run7/B.png"}


def test_files_not_yet_stable_are_stated_on_every_quick_rescan(tmp_path: Path) -> None:
    run = tmp_path / "Run7"
    run.mkdir()
    (run / "A.png").write_bytes(b"a")
    (run / "B.png").write_bytes(b"b")
    age(run)
    walker = Walker(tmp_path)
    walker.scan(full=True)
    with (run / "A.png").open("ab") as f:
        f.write(b"more")  # still being written, in place
    quick = walker.scan(full=False, restat={"Run7/A.png", "Run7/B.png", "Run7/gone.png"})
    assert quick.files == {
        "Run7/A.png": FileStat(5, (run / "A.png").stat().st_mtime_ns),
        "Run7/B.png": FileStat(1, (run / "B.png").stat().st_mtime_ns),  # unchanged, still told
    }
    assert quick.gone == {"Run7/gone.png"}
    # The fresh stat is kept: the next quick rescan does not report the file again.
    assert walker.scan(full=False).files == {}
