"""Model architectures the trainer can build, by name.

Every builder takes ``(input_shape, n_classes)`` and returns a functional Keras model whose
input is an RGB image of raw pixel values in [0, 255] (float32) and whose output is a
softmax over the labels. Preprocessing (rescaling) is part of the model, so the exported
graph, training and evaluation all see the same pixels.

Built in: ``small`` (a compact CNN for CPU, demos and tests), ``inceptionv3`` and
``inceptionv3-cbam`` (InceptionV3 with CBAM attention after every mixed block); the names
are ``hydra_common.training.ARCHITECTURES``. Any other Keras model plugs in by dotted name
``package.module:function`` from the command line; its function gets the same arguments and
Grad-CAM uses its last ``Conv2D`` layer.

The InceptionV3 builders take ``weights``: a weights file for the convolutional base
(Keras' ImageNet file, see ``hydra_trainer.init``), or None for a random start. The softmax
layer always computes in float32, so mixed precision on a GPU keeps the weights exact.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

Builder = Callable[..., keras.Model]  # (input_shape, n_classes[, weights=path]) -> model


@dataclass(frozen=True)
class Architecture:
    """A named way to build a model, its default input size and its Grad-CAM layer."""

    name: str
    build: Builder
    input_size: tuple[int, int]  # (height, width)
    gradcam_layer: str | None  # None: the model's last Conv2D
    # File name of Keras' ImageNet weights for the base (in its cache); None: no such start.
    imagenet_weights: str | None = None

    def build_model(
        self, input_shape: tuple[int, int, int], n_classes: int, weights: str | None = None
    ) -> keras.Model:
        """Build the model, its base started from ``weights`` (a file) or at random (None)."""
        if weights is None:
            return self.build(input_shape, n_classes)
        if self.imagenet_weights is None:
            raise ValueError(f"architecture {self.name!r} cannot start from a weights file")
        return self.build(input_shape, n_classes, weights=weights)


@keras.saving.register_keras_serializable(package="hydra")
class CamReference(layers.Layer):
    """Passes its input through; while training, keeps a moving mean of it (``reference``).

    Grad-CAM weighs the *difference* between an image's activations and this typical
    activation map, so a defect that is missing evidence (a dead sector, a missing peak:
    no ink where a plot usually has some) shows where the evidence is missing.
    """

    def __init__(self, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum

    def build(self, input_shape: Any) -> None:
        shape = tuple(int(d) for d in input_shape[1:])
        self.reference = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, name="reference"
        )
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x: Any, training: bool | None = None) -> Any:
        if training:
            mean = keras.ops.cast(keras.ops.mean(x, axis=0), "float32")
            keep = keras.ops.where(self.seen > 0, self.momentum, 0.0)  # first batch: take it
            self.reference.assign(keep * self.reference + (1.0 - keep) * mean)
            self.seen.assign(1.0)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum}


def build_small(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """A compact CNN: four conv blocks, a coarse spatial pooling, softmax. Trains on a CPU.

    The head pools to a coarse grid and flattens it instead of pooling globally, because
    *where* something is decides many verdicts: a timing peak in the wrong place looks just
    like a good one to a position-blind global average. Grad-CAM reads the third conv
    block through ``cam_reference`` (see ``CamReference``): a 24 x 32 map at the default
    input size points at a few channels or one bin, where the last block's 12 x 16 cannot.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    # Plots are ink on white: inverted, empty paper is 0 and the drawing carries the signal.
    x = layers.Rescaling(-1.0 / 255.0, offset=1.0, name="rescale")(inputs)
    for i, filters in enumerate((16, 32, 48)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i == 2:  # Grad-CAM's layer: an eighth of the plot's resolution, not a sixteenth
            x = CamReference(name="cam_reference")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.MaxPooling2D(2, name="pool_last")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="weights", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="small")


def _inception_base(
    input_shape: tuple[int, int, int], weights: str | None = None
) -> tuple[keras.KerasTensor, keras.Model]:
    inputs = keras.Input(shape=input_shape, name="image")
    # InceptionV3 expects pixels in [-1, 1].
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    base = keras.applications.InceptionV3(include_top=False, weights=weights, input_tensor=x)
    return inputs, base


def build_inceptionv3(
    input_shape: tuple[int, int, int], n_classes: int, weights: str | None = None
) -> keras.Model:
    """InceptionV3 (base from ``weights``, else random) with a softmax head over the labels."""
    inputs, base = _inception_base(input_shape, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    outputs = layers.Dense(n_classes, activation="softmax", name="weights", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="inceptionv3")


class ChannelAttention(layers.Layer):
    """CBAM channel attention: a shared MLP over average- and max-pooled channels."""

    def __init__(self, reduction: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[-1])
        hidden = max(channels // self.reduction, 1)
        self.fc1 = layers.Dense(hidden, activation="relu", name="fc1")
        self.fc2 = layers.Dense(channels, name="fc2")
        self.fc1.build((None, channels))
        self.fc2.build((None, hidden))

    def call(self, x: Any) -> Any:
        avg = keras.ops.mean(x, axis=(1, 2))
        mx = keras.ops.max(x, axis=(1, 2))
        scale = keras.ops.sigmoid(self.fc2(self.fc1(avg)) + self.fc2(self.fc1(mx)))
        return x * scale[:, None, None, :]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reduction": self.reduction}


class SpatialAttention(layers.Layer):
    """CBAM spatial attention: a 7x7 convolution over channel-average and channel-max maps."""

    def build(self, input_shape: Any) -> None:
        self.conv = layers.Conv2D(1, 7, padding="same", activation="sigmoid", name="conv")
        self.conv.build((*input_shape[:-1], 2))

    def call(self, x: Any) -> Any:
        avg = keras.ops.mean(x, axis=-1, keepdims=True)
        mx = keras.ops.max(x, axis=-1, keepdims=True)
        return x * self.conv(keras.ops.concatenate([avg, mx], axis=-1))


def cbam(x: Any, name: str) -> Any:
    """A CBAM block (channel then spatial attention) applied to tensor ``x``."""
    x = ChannelAttention(name=f"{name}_channel")(x)
    return SpatialAttention(name=f"{name}_cbam")(x)


def build_inceptionv3_cbam(
    input_shape: tuple[int, int, int], n_classes: int, weights: str | None = None
) -> keras.Model:
    """InceptionV3 with a CBAM block after each mixed block (mixed0..mixed10).

    The base graph is rebuilt layer by layer, each mixed block's output replaced by its
    CBAM-refined version, so later blocks see the attended features. The base's layers are
    reused, so weights loaded into the base carry over; the CBAM blocks start at random.
    """
    _, base = _inception_base(input_shape, weights)
    tensors: dict[int, Any] = {id(base.inputs[0]): base.inputs[0]}
    for layer in base.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        node = layer._inbound_nodes[0]
        args, kwargs = node.arguments.fill_in(tensors)
        out = layer(*args, **kwargs)
        if layer.name.startswith("mixed") and "_" not in layer.name:
            out = cbam(out, layer.name)
        tensors[id(node.output_tensors[0])] = out
    x = tensors[id(base.output)]
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="weights", dtype="float32")(x)
    return keras.Model(base.inputs[0], outputs, name="inceptionv3_cbam")


INCEPTION_NOTOP = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"

ARCHITECTURES: dict[str, Architecture] = {
    "small": Architecture("small", build_small, (96, 128), "cam_reference"),
    # Grad-CAM on mixed7 (17 x 17 at 299 px), not mixed10 (8 x 8): a heat map must point
    # at a few channels or one bin, and mixed10's cells are an eighth of the plot wide.
    "inceptionv3": Architecture(
        "inceptionv3", build_inceptionv3, (299, 299), "mixed7", INCEPTION_NOTOP
    ),
    "inceptionv3-cbam": Architecture(
        "inceptionv3-cbam", build_inceptionv3_cbam, (299, 299), "mixed7_cbam", INCEPTION_NOTOP
    ),
}


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``, or a plug-in given as ``module:function``."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if ":" not in name:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r} (known: {known}, or module:function)")
    module_name, _, func_name = name.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load architecture plug-in {name!r}: {exc}") from exc
    return Architecture(name, func, (128, 128), None)


def gradcam_layer_name(model: keras.Model, arch: Architecture | None = None) -> str:
    """The layer whose activations Grad-CAM uses: the architecture's, else the last Conv2D."""
    if arch is not None and arch.gradcam_layer:
        return arch.gradcam_layer
    for layer in reversed(model.layers):
        if isinstance(layer, layers.Conv2D):
            return layer.name
    raise ValueError(f"model {model.name!r} has no Conv2D layer for Grad-CAM")
