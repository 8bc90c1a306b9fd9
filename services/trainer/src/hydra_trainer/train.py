"""Fitting a model: options with Hydra's defaults, a streaming input pipeline, early stopping.

The training input is a ``tf.data`` pipeline over the *file list*: paths (and their labels)
are shuffled, then each image is read, decoded and resized in the pipeline (the same
``decode_image`` the exported graph uses) and batched, with prefetching. Peak memory does
not grow with the number of images: only the path list does. Sampling has already happened
on that list (``hydra_trainer.dataset``): an image drawn three times is three entries.

On GPUs the same code trains with mixed precision (float16 compute, float32 softmax), and
with ``MirroredStrategy`` across several GPUs (batch size per GPU, as Hydra's was); on a CPU
neither applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import keras
import tensorflow as tf

from hydra_common.errors import InvalidInput
from hydra_trainer.architectures import Architecture
from hydra_trainer.dataset import LabelledImage, SplitRule
from hydra_trainer.export import decode_image

# progress(fraction 0..1, message)
Progress = Callable[[float, str], None]


@dataclass
class TrainOptions:
    """Training hyper-parameters; the defaults are Hydra's.

    ``architecture`` and ``sampling`` None: the plot type's defaults, else Hydra's
    (``hydra_common.training``), resolved by the pipeline. ``init`` None: the
    architecture's default start (ImageNet for InceptionV3, random for ``small``).
    """

    architecture: str | None = None
    sampling: str | None = None
    init: str | None = None  # imagenet, random or a weights file
    weights_path: str | None = None  # the file ``init`` resolved to (None: random)
    optimizer: str = "sgd"  # or "adam" (learning_rate applies; momentum, nesterov do not)
    epochs: int = 50
    batch_size: int = 16  # per GPU
    learning_rate: float = 0.01
    momentum: float = 0.2
    nesterov: bool = True
    min_delta: float = 0.005
    patience: int = 5
    test_fraction: float = 0.15
    validation_fraction: float = 0.10
    train_fraction: float | None = None  # the old single knob; overrides the two above
    seed: int = 0
    input_height: int | None = None  # None: the architecture's default
    input_width: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The options as recorded in ``models.hyperparameters``."""
        return asdict(self)

    def split_rule(self) -> SplitRule:
        """How images are split into train, validation and test."""
        if self.train_fraction is not None:
            return SplitRule.from_train_fraction(self.train_fraction)
        return SplitRule(self.test_fraction, self.validation_fraction)


def make_dataset(
    items: Sequence[LabelledImage],
    labels: Sequence[str],
    height: int,
    width: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (pixels, one-hot labels) decoded from the files as they are needed."""
    index = {label: i for i, label in enumerate(labels)}
    paths = [i.path for i in items]
    targets = [index[i.label] for i in items]
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths, dtype=tf.string), tf.constant(targets, dtype=tf.int32))
    )
    if shuffle_seed is not None and paths:
        # Shuffling paths, not pixels: a buffer over the whole list costs only the strings.
        ds = ds.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    n = len(labels)

    def load(path: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode_image(tf.io.read_file(path), height, width), tf.one_hot(target, n)

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _raise_for_unreadable(items: Sequence[LabelledImage], height: int, width: int) -> None:
    """Find an image that does not read or decode, and name it."""
    for item in items:
        try:
            decode_image(tf.io.read_file(item.path), height, width)
        except tf.errors.OpError as exc:
            raise InvalidInput(f"unreadable image {item.path}") from exc


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


def distribution() -> tuple[tf.distribute.Strategy, int]:
    """The strategy to build and fit under, and the number of replicas.

    GPUs: mixed precision, and MirroredStrategy when there are several. CPU: the default
    strategy, float32."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, int(strategy.num_replicas_in_sync)
    return tf.distribute.get_strategy(), 1


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
    """Build ``arch`` and fit it on streamed images, early stopping on the validation loss."""
    height = options.input_height or arch.input_size[0]
    width = options.input_width or arch.input_size[1]
    if not train:
        raise InvalidInput("no training images")
    keras.utils.set_random_seed(options.seed)
    strategy, replicas = distribution()
    batch = options.batch_size * replicas
    train_ds = make_dataset(train, labels, height, width, batch, shuffle_seed=options.seed)
    has_val = len(validation) > 0
    val_ds = make_dataset(validation, labels, height, width, batch) if has_val else None
    with strategy.scope():
        model = arch.build_model((height, width, 3), len(labels), options.weights_path)
        model.compile(
            optimizer=make_optimizer(options),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
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
    try:
        history = model.fit(
            train_ds,
            epochs=options.epochs,
            validation_data=val_ds,
            shuffle=False,  # the pipeline shuffles the path list each epoch
            callbacks=callbacks,
            verbose=0,
        )
    except tf.errors.OpError:
        _raise_for_unreadable([*train, *validation], height, width)
        raise
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return FitResult(model, len(hist.get("loss", [])), hist)
