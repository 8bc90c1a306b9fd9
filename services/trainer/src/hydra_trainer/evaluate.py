"""Evaluating an exported model on held-out images.

The weights come from the exported SavedModel's ``serving_default`` signature, fed the
image files' bytes: exactly what the model server will compute, decoding included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hydra_trainer.dataset import LabelledImage
from hydra_trainer.thresholds import ThresholdResult, confusion_matrix, thresholds_for


def predict_files(version_dir: Path | str, paths: Sequence[str], batch: int = 32) -> np.ndarray:
    """Weights ``[n, n_labels]`` of the exported model for image files."""
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    parts = []
    for start in range(0, len(paths), batch):
        data = [Path(p).read_bytes() for p in paths[start : start + batch]]
        parts.append(serve(image=tf.constant(data))["weights"].numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


@dataclass
class Evaluation:
    """Held-out results: weights, confusion matrix, thresholds and summary figures."""

    labels: list[str]
    images: list[LabelledImage]
    weights: np.ndarray
    truth: np.ndarray
    confusion: np.ndarray
    thresholds: list[ThresholdResult]

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.weights, axis=1) if len(self.weights) else np.zeros(0, dtype=int)

    def f1_per_label(self) -> dict[str, float]:
        """F1 of the top label per class (no thresholds)."""
        out = {}
        for i, label in enumerate(self.labels):
            tp = int(self.confusion[i, i])
            fp = int(self.confusion[:, i].sum()) - tp
            fn = int(self.confusion[i, :].sum()) - tp
            out[label] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        return out

    def disagreements(self) -> list[int]:
        """Indexes of images where the top label differs from the human label."""
        return [int(i) for i in np.nonzero(self.predicted != self.truth)[0]]

    def metrics(self) -> dict[str, Any]:
        """The figures stored in ``models.metrics``."""
        n = len(self.truth)
        return {
            "evaluated_images": n,
            "accuracy": float((self.predicted == self.truth).mean()) if n else 0.0,
            "f1": self.f1_per_label(),
            "confusion_matrix": {"labels": self.labels, "counts": self.confusion.tolist()},
            "thresholds": {
                t.label: {
                    "threshold": t.threshold,
                    "f1": t.f1,
                    "precision": t.precision,
                    "recall": t.recall,
                    "support": t.support,
                    "evaluated": t.evaluated,
                }
                for t in self.thresholds
            },
        }


def evaluate(
    version_dir: Path | str, labels: Sequence[str], images: Sequence[LabelledImage]
) -> Evaluation:
    """Run the exported model on ``images`` and compute the held-out figures."""
    return evaluate_weights(labels, images, predict_files(version_dir, [i.path for i in images]))


def evaluate_weights(
    labels: Sequence[str], images: Sequence[LabelledImage], weights: np.ndarray
) -> Evaluation:
    """The held-out figures from weights already computed for ``images``."""
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index[i.label] for i in images], dtype=int)
    if not len(images):
        weights = np.zeros((0, len(labels)), dtype=np.float32)
    return Evaluation(
        labels=list(labels),
        images=list(images),
        weights=weights,
        truth=truth,
        confusion=confusion_matrix(weights, truth, len(labels)),
        thresholds=thresholds_for(weights, truth, labels),
    )
