"""Margins and the suggested labelling order (hydra_common.uncertainty)."""

from __future__ import annotations

import math

import pytest

from hydra_common.uncertainty import Candidate, margin, suggested_order


def test_margin_is_top_minus_runner_up() -> None:
    assert margin({"Good": 0.6, "Bad": 0.3, "NoData": 0.1}) == pytest.approx(0.3)
    assert margin([0.2, 0.7, 0.1]) == pytest.approx(0.5)
    assert margin({"Good": 0.5, "Bad": 0.5}) == 0.0
    assert margin({"Good": 0.9}) == pytest.approx(0.9)


def test_margin_of_stored_junk_is_none_or_ignores_it() -> None:
    assert margin(None) is None
    assert margin({}) is None
    assert margin({"Good": "high", "Bad": None}) is None
    assert margin({"Good": 0.8, "Bad": math.nan, "x": True, "NoData": 0.15}) == pytest.approx(0.65)


def test_suggested_order_tiers_runs_and_puts_unknown_last() -> None:
    cands = [
        Candidate(1, 7, 0.01),
        Candidate(2, 7, 0.02),
        Candidate(3, 7, 0.03),
        Candidate(4, 8, 0.50),
        Candidate(5, 9, None),
        Candidate(6, 8, 0.50),  # ties: the newer (higher key) first
    ]
    assert [c.key for c in suggested_order(cands, per_run=1)] == [1, 6, 2, 4, 3, 5]
    assert [c.key for c in suggested_order(cands, per_run=5)] == [1, 2, 3, 6, 4, 5]
    with pytest.raises(ValueError):
        suggested_order(cands, per_run=0)
