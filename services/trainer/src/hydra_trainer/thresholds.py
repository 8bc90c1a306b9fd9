"""Default per-label thresholds at the maximum F1.

For each label the threshold scan mirrors what the keeper does with it: an image is
*confirmed* as label L when L has the highest weight and that weight is at or above L's
threshold. For every t in 0.00, 0.01, ..., 1.00 the F1 of "confirmed L" against the human
labels is computed on the held-out images; the threshold is the t with the highest F1,
ties going to the higher t, capped at 0.99 (so a weight of exactly 1.0 is never needed).

A label that can never be confirmed on these images (it is never the top label, or it
has no examples there) has F1 = 0 at every t: the tie rule then gives the cap, 0.99, and
``evaluated`` is False. That is deliberate: a verdict the model could not be checked on
stays unconfirmed (and so is kept for labelling) until an expert sets a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEPS = np.round(np.arange(0, 101) / 100, 2)  # 0.00 .. 1.00
CAP = 0.99


@dataclass(frozen=True)
class ThresholdResult:
    """The chosen threshold for one label and its figures at that threshold."""

    label: str
    threshold: float
    f1: float
    precision: float
    recall: float
    support: int  # held-out images whose human label is this one
    evaluated: bool  # False: F1 was 0 everywhere, threshold is the cap


def f1_curve(weights: np.ndarray, truth: np.ndarray, label_index: int) -> np.ndarray:
    """F1 of "confirmed as label_index" at every threshold step (shape ``[101]``)."""
    top = np.argmax(weights, axis=1) == label_index
    score = weights[:, label_index]
    positive = truth == label_index
    confirmed = top[None, :] & (score[None, :] >= STEPS[:, None] - 1e-9)
    tp = (confirmed & positive[None, :]).sum(axis=1)
    fp = (confirmed & ~positive[None, :]).sum(axis=1)
    fn = positive.sum() - tp
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def max_f1_threshold(
    weights: np.ndarray, truth: np.ndarray, label_index: int, label: str = ""
) -> ThresholdResult:
    """The max-F1 threshold of one label (ties to the higher threshold, cap 0.99)."""
    weights = np.asarray(weights, dtype=float)
    truth = np.asarray(truth, dtype=int)
    curve = f1_curve(weights, truth, label_index)
    best = float(curve.max()) if curve.size else 0.0
    # The highest step reaching the best F1; steps above the cap are not eligible.
    eligible = np.nonzero(np.isclose(curve, best) & (STEPS <= CAP + 1e-9))[0]
    idx = int(eligible.max()) if eligible.size else int(np.searchsorted(STEPS, CAP))
    t = float(STEPS[idx])
    if best == 0.0:
        t, idx = CAP, int(np.searchsorted(STEPS, CAP))
    top = np.argmax(weights, axis=1) == label_index
    confirmed = top & (weights[:, label_index] >= t - 1e-9)
    positive = truth == label_index
    tp = int((confirmed & positive).sum())
    precision = tp / int(confirmed.sum()) if confirmed.any() else 0.0
    recall = tp / int(positive.sum()) if positive.any() else 0.0
    return ThresholdResult(
        label=label,
        threshold=t,
        f1=float(curve[idx]) if best > 0 else 0.0,
        precision=precision,
        recall=recall,
        support=int(positive.sum()),
        evaluated=best > 0.0,
    )


def thresholds_for(
    weights: np.ndarray, truth: np.ndarray, labels: Sequence[str]
) -> list[ThresholdResult]:
    """Max-F1 thresholds for every label, in label order."""
    return [max_f1_threshold(weights, truth, i, lb) for i, lb in enumerate(labels)]


def confusion_matrix(weights: np.ndarray, truth: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts ``[true, predicted]`` with the top label as the prediction."""
    matrix = np.zeros((n_labels, n_labels), dtype=int)
    if len(truth):
        np.add.at(matrix, (np.asarray(truth, dtype=int), np.argmax(weights, axis=1)), 1)
    return matrix
