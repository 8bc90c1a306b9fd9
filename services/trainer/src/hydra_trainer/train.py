"""Fitting a model: options with Hydra's defaults, image loading, early stopping, progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from hydra_common.errors import InvalidInput
from hydra_trainer.architectures import Architecture
from hydra_trainer.dataset import LabelledImage
from hydra_trainer.export import decode_images

# progress(fraction 0..1, message)
Progress = Callable[[float, str], None]


@dataclass
class TrainOptions:
    """Training hyper-parameters; the defaults are Hydra's."""

    architecture: str = "small"
    sampling: str = "normal"
    optimizer: str = "sgd"  # or "adam" (learning_rate applies; momentum, nesterov do not)
    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 0.01
    momentum: float = 0.2
    nesterov: bool = True
    min_delta: float = 0.005
    patience: int = 5
    train_fraction: float = 0.95
    seed: int = 0
    input_height: int | None = None  # None: the architecture's default
    input_width: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The options as recorded in ``models.hyperparameters``."""
        return asdict(self)


def load_pixels(paths: Sequence[str], height: int, width: int, chunk: int = 64) -> np.ndarray:
    """Decode image files exactly as the exported graph does: float32 RGB in 0..255."""
    out = np.zeros((len(paths), height, width, 3), dtype=np.float32)
    for start in range(0, len(paths), chunk):
        part = paths[start : start + chunk]
        data = tf.constant([_read(p) for p in part])
        try:
            out[start : start + len(part)] = decode_images(data, height, width).numpy()
        except tf.errors.OpError:
            _raise_for_unreadable(part, height, width)
            raise
    return out


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read image {path}: {exc.strerror}") from exc


def _raise_for_unreadable(paths: Sequence[str], height: int, width: int) -> None:
    """Find the image of a failed batch that does not decode, and name it."""
    for path in paths:
        try:
            decode_images(tf.constant([_read(path)]), height, width)
        except tf.errors.OpError as exc:
            raise InvalidInput(f"unreadable image {path}") from exc


class _ProgressCallback(keras.callbacks.Callback):
    def __init__(self, epochs: int, progress: Progress | None) -> None:
        super().__init__()
        self.epochs = epochs
        self.progress = progress

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.progress is None:
            return
        logs = logs or {}
        msg = f"epoch {epoch + 1}/{self.epochs}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in sorted(logs.items()) if isinstance(v, float | int)
        )
        self.progress((epoch + 1) / self.epochs, msg)


def make_optimizer(options: TrainOptions) -> keras.optimizers.Optimizer:
    """SGD with Nesterov momentum (Hydra's default), or Adam."""
    if options.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=options.learning_rate)
    if options.optimizer != "sgd":
        raise InvalidInput(f"unknown optimizer {options.optimizer!r} (sgd or adam)")
    return keras.optimizers.SGD(
        learning_rate=options.learning_rate, momentum=options.momentum, nesterov=options.nesterov
    )


@dataclass
class FitResult:
    """The fitted model and what happened during fitting."""

    model: keras.Model
    epochs_run: int
    history: dict[str, list[float]]


def fit(
    arch: Architecture,
    labels: Sequence[str],
    train: Sequence[LabelledImage],
    validation: Sequence[LabelledImage],
    options: TrainOptions,
    progress: Progress | None = None,
) -> FitResult:
    """Build ``arch`` and fit it with SGD and early stopping on the validation loss."""
    height = options.input_height or arch.input_size[0]
    width = options.input_width or arch.input_size[1]
    index = {label: i for i, label in enumerate(labels)}
    keras.utils.set_random_seed(options.seed)
    x_train = load_pixels([i.path for i in train], height, width)
    y_train = keras.utils.to_categorical([index[i.label] for i in train], len(labels))
    x_val = load_pixels([i.path for i in validation], height, width)
    y_val = keras.utils.to_categorical([index[i.label] for i in validation], len(labels))
    model = arch.build((height, width, 3), len(labels))
    model.compile(
        optimizer=make_optimizer(options),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    has_val = len(validation) > 0
    callbacks: list[keras.callbacks.Callback] = [_ProgressCallback(options.epochs, progress)]
    if has_val:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                min_delta=options.min_delta,
                patience=options.patience,
                restore_best_weights=True,
            )
        )
    history = model.fit(
        x_train,
        y_train,
        batch_size=options.batch_size,
        epochs=options.epochs,
        validation_data=(x_val, y_val) if has_val else None,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return FitResult(model, len(hist.get("loss", [])), hist)
