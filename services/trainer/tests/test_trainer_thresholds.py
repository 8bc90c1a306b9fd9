"""The max-F1 threshold scan: best threshold, ties, the cap, labels never confirmed."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_trainer.thresholds import (
    CAP,
    confusion_matrix,
    f1_curve,
    max_f1_threshold,
    thresholds_for,
)


def _two_class(bad_scores: list[float], truth: list[int]) -> np.ndarray:
    b = np.array(bad_scores)
    return np.stack([1 - b, b], axis=1)


def test_threshold_separates_classes_at_highest_tied_step() -> None:
    # Bad (index 1) images score 0.9 and 0.8; Good images score Bad 0.6 (top label) and 0.1.
    weights = _two_class([0.9, 0.8, 0.6, 0.1], [1, 1, 0, 0])
    truth = np.array([1, 1, 0, 0])
    r = max_f1_threshold(weights, truth, 1, "Bad")
    # F1 is 1.0 for every threshold in (0.60, 0.80]: ties go to the highest, 0.80.
    assert r.threshold == pytest.approx(0.80)
    assert r.f1 == pytest.approx(1.0)
    assert r.precision == pytest.approx(1.0) and r.recall == pytest.approx(1.0)
    assert r.support == 2 and r.evaluated


def test_threshold_is_capped() -> None:
    weights = _two_class([1.0, 1.0, 0.0], [1, 1, 0])
    r = max_f1_threshold(weights, np.array([1, 1, 0]), 1, "Bad")
    # F1 = 1 up to 1.00, but the threshold never exceeds the cap.
    assert r.threshold == pytest.approx(CAP)
    assert r.f1 == pytest.approx(1.0)


def test_label_never_predicted_gets_the_cap_and_is_marked() -> None:
    # NoData (index 2) is never the top label: it can never be confirmed.
    weights = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3]])
    truth = np.array([0, 1, 2])
    r = max_f1_threshold(weights, truth, 2, "NoData")
    assert r.threshold == pytest.approx(CAP)
    assert r.f1 == 0.0 and not r.evaluated
    assert r.support == 1 and r.recall == 0.0


def test_label_without_examples_gets_the_cap() -> None:
    weights = np.array([[0.9, 0.1], [0.8, 0.2]])
    r = max_f1_threshold(weights, np.array([0, 0]), 1, "Bad")
    assert r.threshold == pytest.approx(CAP) and not r.evaluated and r.support == 0


def test_f1_curve_drops_when_threshold_passes_true_positive_scores() -> None:
    weights = _two_class([0.55, 0.95], [1, 1])
    curve = f1_curve(weights, np.array([1, 1]), 1)
    assert curve[50] == pytest.approx(1.0)  # t = 0.50
    assert curve[60] == pytest.approx(2 / 3)  # t = 0.60: one of two confirmed
    assert curve[100] == pytest.approx(0.0)  # t = 1.00: none


def test_best_f1_wins_over_higher_threshold() -> None:
    # One Good image (truth 0) has Bad 0.7; Bad images 0.65 and 0.9.
    weights = _two_class([0.9, 0.65, 0.7], [1, 1, 0])
    r = max_f1_threshold(weights, np.array([1, 1, 0]), 1, "Bad")
    # t <= 0.65: tp 2, fp 1 -> 0.8; 0.65 < t <= 0.70: tp 1, fp 1 -> 0.5; up to 0.9: 2/3.
    assert r.threshold == pytest.approx(0.65)
    assert r.f1 == pytest.approx(0.8)


def test_thresholds_for_every_label_and_confusion_matrix() -> None:
    weights = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    truth = np.array([0, 1, 1])
    results = thresholds_for(weights, truth, ["Good", "Bad"])
    assert [r.label for r in results] == ["Good", "Bad"]
    assert all(0.0 <= r.threshold <= CAP for r in results)
    assert confusion_matrix(weights, truth, 2).tolist() == [[1, 0], [1, 1]]
