"""Evaluating an exported model: thresholds from validation, figures from test.

The weights come from the exported SavedModel's ``serving_default`` signature, fed the
image files' bytes: exactly what the model server will compute, decoding included.

The split discipline (``hydra_trainer.dataset``): early stopping and thresholds use the
validation images; every figure stored in ``models.metrics`` and shown by the Library,
the training report and ``hydra models`` comes from the test images, which neither the
model nor its thresholds ever saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hydra_trainer.dataset import LabelledImage
from hydra_trainer.thresholds import (
    ThresholdChoice,
    ThresholdResult,
    confusion_matrix,
    figures_at,
)


def predict_files(version_dir: Path | str, paths: Sequence[str], batch: int = 32) -> np.ndarray:
    """Weights ``[n, n_labels]`` of the exported model for image files, a batch at a time."""
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    parts = []
    for start in range(0, len(paths), batch):
        data = [Path(p).read_bytes() for p in paths[start : start + batch]]
        parts.append(serve(image=tf.constant(data))["weights"].numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


def truth_of(labels: Sequence[str], images: Sequence[LabelledImage]) -> np.ndarray:
    """Label indexes of the images' human labels."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[i.label] for i in images], dtype=int)


@dataclass
class Evaluation:
    """Test-split results at thresholds chosen on the validation split."""

    labels: list[str]
    images: list[LabelledImage]  # the test images
    weights: np.ndarray
    truth: np.ndarray
    confusion: np.ndarray
    choices: list[ThresholdChoice]
    thresholds: list[ThresholdResult]  # test figures at the chosen thresholds
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    indicative: list[str] = field(default_factory=list)  # labels with too few test images

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.weights, axis=1) if len(self.weights) else np.zeros(0, dtype=int)

    def f1_per_label(self) -> dict[str, float]:
        """F1 of the top label per class on the test images (no thresholds)."""
        out = {}
        for i, label in enumerate(self.labels):
            tp = int(self.confusion[i, i])
            fp = int(self.confusion[:, i].sum()) - tp
            fn = int(self.confusion[i, :].sum()) - tp
            out[label] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        return out

    def disagreements(self) -> list[int]:
        """Indexes of test images where the top label differs from the human label."""
        return [int(i) for i in np.nonzero(self.predicted != self.truth)[0]]

    def notes(self) -> list[str]:
        """What a reader of the figures must know: thin splits, smoothed thresholds."""
        out = []
        if self.indicative:
            out.append(
                "figures are indicative: fewer than 20 test images for "
                + ", ".join(self.indicative)
            )
        out += [c.note for c in self.choices if c.note]
        return out

    def metrics(self) -> dict[str, Any]:
        """The figures stored in ``models.metrics`` (all from the test split)."""
        n = len(self.truth)
        choices = {c.label: c for c in self.choices}
        return {
            "split": "test",
            "evaluated_images": n,
            "accuracy": float((self.predicted == self.truth).mean()) if n else 0.0,
            "f1": self.f1_per_label(),
            "confusion_matrix": {"labels": self.labels, "counts": self.confusion.tolist()},
            "thresholds": {
                t.label: {
                    "threshold": t.threshold,
                    "method": choices[t.label].method,
                    "validation_images": choices[t.label].validation_support,
                    "f1": t.f1,
                    "precision": t.precision,
                    "recall": t.recall,
                    "support": t.support,
                    "evaluated": t.evaluated,
                }
                for t in self.thresholds
            },
            "split_counts": self.split_counts,
            "indicative": bool(self.indicative),
            "indicative_labels": self.indicative,
            "notes": self.notes(),
        }


def evaluate_weights(
    labels: Sequence[str],
    test: Sequence[LabelledImage],
    test_weights: np.ndarray,
    choices: Sequence[ThresholdChoice],
    *,
    split_counts: dict[str, dict[str, int]] | None = None,
    indicative: Sequence[str] = (),
) -> Evaluation:
    """The test figures, at thresholds already chosen (on validation)."""
    truth = truth_of(labels, test)
    if not len(test):
        test_weights = np.zeros((0, len(labels)), dtype=np.float32)
    by_label = {c.label: c for c in choices}
    return Evaluation(
        labels=list(labels),
        images=list(test),
        weights=test_weights,
        truth=truth,
        confusion=confusion_matrix(test_weights, truth, len(labels)),
        choices=[by_label[lb] for lb in labels],
        thresholds=[
            figures_at(test_weights, truth, i, by_label[lb].threshold, lb)
            for i, lb in enumerate(labels)
        ],
        split_counts=dict(split_counts or {}),
        indicative=list(indicative),
    )
