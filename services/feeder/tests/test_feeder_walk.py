"""The full rescan's walk: relative POSIX paths, hidden entries, the excluded quarantine,
symlinked directories not followed."""

from __future__ import annotations

import os
from pathlib import Path

from hydra_feeder.scanner import FileStat, walk


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
