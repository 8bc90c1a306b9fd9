"""Names that parse but cannot travel in an order or be stored are refused as ``bad_name``.

Before this check, such a file made ``make_order`` (protobuf int64/int32/UTF-8) or the keeper's
insert fail, and its whole batch was retried for ever: the good files beside it never went.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hydra_feeder.intake import unrepresentable
from hydra_feeder.naming import parse_hydra
from hydra_feeder.orders import make_order
from hydra_feeder.quarantine import quarantine
from hydra_feeder.scanner import FileStat


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("Run99999999999999999999/P.png", "run number"),
        ("Run1/P_99999999999.png", "chunk"),
        ("RunPeriod-" + "x" * 60 + "/Run1/P.png", "run period"),
        ("Run1/" + "P" * 129 + ".png", "plot type"),
        ("Run1/P_\udcff.png", "UTF-8"),
    ],
)
def test_unrepresentable_names(rel: str, why: str) -> None:
    parsed = parse_hydra(rel)
    assert parsed is not None
    assert why in unrepresentable(rel, parsed)


def test_representable_names_make_orders() -> None:
    rel = f"RunPeriod-2026-01/Run{2**63 - 1}/P_{2**31 - 1}.png"
    parsed = parse_hydra(rel)
    assert parsed is not None and unrepresentable(rel, parsed) == ""
    order = make_order("id", rel, parsed, FileStat(1, 1), b"x")
    assert order.run_number == 2**63 - 1 and order.chunk == 2**31 - 1


def test_quarantine_note_for_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    name = b"P_\xff.png".decode("utf-8", "surrogateescape")
    (src / name).write_bytes(b"x")
    target = quarantine(src / name, name, tmp_path / "q", "bad_name", "not UTF-8")
    assert target.is_file() and not (src / name).exists()
    note = target.with_name(target.name + ".reason.txt").read_text()
    assert "reason: bad_name" in note and "\\udcff" in note


def test_quarantine_note_for_a_250_character_name(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    name = "P" * 246 + ".png"
    for _ in range(2):  # the second one collides with the first and gets another name
        (src / name).write_bytes(b"x")
        target = quarantine(src / name, name, tmp_path / "q", "bad_name", "long")
        assert target.is_file() and not (src / name).exists()
        notes = list(target.parent.glob(target.name[:100] + "*.reason.txt"))
        assert notes and "reason: bad_name" in notes[0].read_text()
    assert len(list((tmp_path / "q" / "bad_name").iterdir())) == 4
