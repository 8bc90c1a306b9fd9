"""The max-F1 threshold scan: best threshold, ties, the cap, labels never confirmed."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_trainer.dataset import LabelledImage
from hydra_trainer.evaluate import evaluate_weights
from hydra_trainer.thresholds import (
    CAP,
    MIN_STABLE,
    choose_thresholds,
    confusion_matrix,
    f1_curve,
    figures_at,
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


# --- thresholds on validation, figures on test ----------------------------------------------


def _separable(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two classes whose Bad weight separates them at about 0.7."""
    truth = np.array([0] * n_per_class + [1] * n_per_class)
    bad = np.where(
        truth == 1, rng.uniform(0.75, 1.0, truth.size), rng.uniform(0.0, 0.65, truth.size)
    )
    return _two_class(list(bad), list(truth)), truth


def test_enough_validation_images_give_the_plain_max_f1_threshold() -> None:
    weights, truth = _separable(40, np.random.default_rng(0))
    choices = {c.label: c for c in choose_thresholds(weights, truth, ["Good", "Bad"])}
    plain = max_f1_threshold(weights, truth, 1, "Bad")
    assert choices["Bad"].method == "max_f1" and choices["Bad"].threshold == plain.threshold
    assert choices["Bad"].validation_support == 40 and choices["Bad"].note == ""


def test_few_validation_images_shrink_the_threshold_towards_the_prior() -> None:
    # 6 Bad images, perfectly separated at a high weight: max F1 alone would say 0.99.
    truth = np.array([1] * 6 + [0] * 6)
    weights = _two_class([0.995] * 6 + [0.2] * 6, list(truth))
    assert max_f1_threshold(weights, truth, 1).threshold == CAP
    (_, bad) = choose_thresholds(weights, truth, ["Good", "Bad"], {"Bad": 0.6})
    w = 6 / MIN_STABLE
    assert bad.method == "max_f1_smoothed"
    assert bad.threshold == pytest.approx(round(w * CAP + (1 - w) * 0.6, 2))
    assert "6 validation images" in bad.note and "0.60" in bad.note
    # Without a previous model the prior is the keeper's default, 0.5.
    (_, bad) = choose_thresholds(weights, truth, ["Good", "Bad"])
    assert bad.threshold == pytest.approx(round(w * CAP + (1 - w) * 0.5, 2))


def test_a_label_without_validation_images_takes_the_prior() -> None:
    weights, truth = _two_class([0.1, 0.2], [0, 0]), np.array([0, 0])
    (_, bad) = choose_thresholds(weights, truth, ["Good", "Bad"], {"Bad": 0.7})
    assert bad.method == "prior" and bad.threshold == 0.7 and bad.validation_support == 0


def test_test_figures_use_the_validation_threshold_not_their_own() -> None:
    rng = np.random.default_rng(1)
    val_w, val_t = _separable(40, rng)
    choices = choose_thresholds(val_w, val_t, ["Good", "Bad"])
    # Test images whose own best threshold would differ: Bad weights all at 0.68..0.72.
    test_t = np.array([1] * 20 + [0] * 20)
    test_w = _two_class([0.7] * 20 + [0.3] * 20, list(test_t))
    images = [LabelledImage(i, f"{i}.png", ["Good", "Bad"][t]) for i, t in enumerate(test_t)]
    ev = evaluate_weights(["Good", "Bad"], images, test_w, choices)
    bad_choice = next(c for c in choices if c.label == "Bad")
    bad_fig = next(t for t in ev.thresholds if t.label == "Bad")
    assert bad_fig.threshold == bad_choice.threshold
    expected = figures_at(test_w, test_t, 1, bad_choice.threshold)
    assert (bad_fig.precision, bad_fig.recall) == (expected.precision, expected.recall)
    metrics = ev.metrics()
    assert metrics["split"] == "test" and metrics["evaluated_images"] == 40
    assert metrics["thresholds"]["Bad"]["validation_images"] == 40
    assert metrics["indicative"] is False


def test_figures_at_counts_only_confirmed_top_labels() -> None:
    truth = np.array([1, 1, 0, 0])
    weights = _two_class([0.9, 0.55, 0.6, 0.1], list(truth))
    r = figures_at(weights, truth, 1, 0.58)
    # Confirmed Bad: 0.9 (true Bad) and 0.6 (a Good): precision 1/2, recall 1/2.
    assert (r.precision, r.recall, r.support) == (0.5, 0.5, 2)
