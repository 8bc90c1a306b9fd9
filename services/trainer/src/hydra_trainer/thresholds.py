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

Thresholds are chosen on the *validation* images only (``choose_thresholds``); the test
images then measure them (``figures_at``). Max F1 on a handful of images is noise: with
fewer than ``MIN_STABLE`` (30) validation images of a label, the chosen threshold is
shrunk towards a prior, ``t = w * t_maxF1 + (1 - w) * prior`` with ``w = n / 30``, where
the prior is the label's threshold in the plot type's active model when there is one, else
0.5 (the keeper's default); method ``max_f1_smoothed``, and the report says so. With no
validation image of the label at all, the prior itself is used (method ``prior``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEPS = np.round(np.arange(0, 101) / 100, 2)  # 0.00 .. 1.00
CAP = 0.99
MIN_STABLE = 30  # validation images of a label for a max-F1 threshold to stand alone
DEFAULT_PRIOR = 0.5


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


@dataclass(frozen=True)
class ThresholdChoice:
    """A label's threshold, how it was chosen, and on how many validation images."""

    label: str
    threshold: float
    method: str  # max_f1, max_f1_smoothed or prior
    validation_support: int
    validation_f1: float
    note: str = ""


def choose_thresholds(
    weights: np.ndarray,
    truth: np.ndarray,
    labels: Sequence[str],
    priors: dict[str, float] | None = None,
) -> list[ThresholdChoice]:
    """Thresholds from validation weights, smoothed towards a prior where support is thin."""
    priors = priors or {}
    weights = np.asarray(weights, dtype=float).reshape(len(truth), len(labels))
    out = []
    for i, label in enumerate(labels):
        support = int((np.asarray(truth) == i).sum())
        prior = float(priors.get(label, DEFAULT_PRIOR))
        best = max_f1_threshold(weights, truth, i, label)
        if support == 0:
            t, method = prior, "prior"
            note = f"{label}: no validation image; threshold {prior:.2f} (prior)"
        elif support < MIN_STABLE:
            w = support / MIN_STABLE
            t = round(w * best.threshold + (1 - w) * prior, 2)
            method = "max_f1_smoothed"
            note = (
                f"{label}: {support} validation images (< {MIN_STABLE}); max-F1 threshold "
                f"{best.threshold:.2f} smoothed towards {prior:.2f}: {t:.2f}"
            )
        else:
            t, method, note = best.threshold, "max_f1", ""
        out.append(ThresholdChoice(label, float(min(t, CAP)), method, support, best.f1, note))
    return out


def figures_at(
    weights: np.ndarray, truth: np.ndarray, label_index: int, threshold: float, label: str = ""
) -> ThresholdResult:
    """Precision, recall and F1 of "confirmed as the label" at a given threshold."""
    weights = np.asarray(weights, dtype=float)
    truth = np.asarray(truth, dtype=int)
    positive = truth == label_index
    if len(truth):
        top = np.argmax(weights, axis=1) == label_index
        confirmed = top & (weights[:, label_index] >= threshold - 1e-9)
    else:
        confirmed = np.zeros(0, dtype=bool)
    tp = int((confirmed & positive).sum())
    fp = int((confirmed & ~positive).sum())
    fn = int(positive.sum()) - tp
    return ThresholdResult(
        label=label,
        threshold=float(threshold),
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / int(positive.sum()) if positive.any() else 0.0,
        support=int(positive.sum()),
        evaluated=bool(positive.any()),
    )
