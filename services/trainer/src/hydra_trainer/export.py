"""Export a Keras classifier as a TF Serving SavedModel with Hydra's two signatures.

Layout: ``<model_dir>/<name>/<version>/`` (TF Serving's base path and version directory).
Signatures (docs/contracts.md):

- ``serving_default``: ``image`` (string ``[batch]``, encoded PNG/JPEG) -> ``weights``
  (float ``[batch, n_labels]``, softmax).
- ``explain``: same input -> ``weights`` and ``heatmap`` (float ``[batch, h, w]``, Grad-CAM
  of the top label at the model's input resolution, each map scaled to [0, 1]).

Decoding, resizing and preprocessing run inside the graph, so every client sends plain
image bytes and sees exactly the preprocessing training used.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from hydra_trainer.architectures import Architecture, get_architecture, gradcam_layer_name

# Extra metadata lives beside the graph; TF Serving ignores ``assets.extra`` except warm-up.
METADATA_FILE = "assets.extra/hydra_model.json"


def decode_image(data: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Decode one encoded image to float32 RGB ``[height, width, 3]`` in 0..255.

    The one decoding both the exported graph and the training input pipeline use."""
    img = tf.io.decode_image(data, channels=3, expand_animations=False)
    img = tf.image.resize(tf.cast(img, tf.float32), (height, width), antialias=True)
    return tf.clip_by_value(img, 0.0, 255.0)


def decode_images(images: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Decode a batch of encoded images to float32 RGB ``[batch, height, width, 3]`` in 0..255."""
    return tf.map_fn(
        lambda data: decode_image(data, height, width),
        images,
        fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
    )


class HydraExportModule(tf.Module):
    """The exported graph: the Keras model plus the decode and Grad-CAM functions."""

    def __init__(self, model: keras.Model, gradcam_layer: str) -> None:
        super().__init__()
        self.model = model
        self.height = int(model.input_shape[1])
        self.width = int(model.input_shape[2])
        # One functional model giving both the conv activations and what the softmax head
        # takes, so Grad-CAM can use the logits (a saturated softmax has no gradient).
        head = model.layers[-1]
        self.head = _linear_head(head)
        # A typical activation map kept by the layer (hydra_trainer.architectures.CamReference).
        self.reference = getattr(model.get_layer(gradcam_layer), "reference", None)
        features = head.input if self.head is not None else model.outputs[0]
        self.cam_model = keras.Model(
            model.inputs, [model.get_layer(gradcam_layer).output, features]
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")])
    def serving_default(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        """Softmax weights for a batch of encoded images."""
        pixels = decode_images(image, self.height, self.width)
        return {"weights": self.model(pixels, training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")])
    def explain(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        """Softmax weights and the Grad-CAM heat map of the top label."""
        pixels = decode_images(image, self.height, self.width)
        reference = None if self.reference is None else tf.convert_to_tensor(self.reference)
        weights, heatmap = gradcam(self.cam_model, pixels, self.head, reference)
        return {"weights": weights, "heatmap": heatmap}


Head = Callable[[tf.Tensor], tf.Tensor]


def _linear_head(layer: keras.layers.Layer) -> Head | None:
    """The logits function of a softmax output layer (Dense or Activation), else None."""
    activation = getattr(layer, "activation", None)
    if activation is not keras.activations.softmax:
        return None
    if isinstance(layer, keras.layers.Dense):

        def dense(x: tf.Tensor) -> tf.Tensor:
            logits = tf.matmul(tf.cast(x, layer.kernel.dtype), layer.kernel)
            return logits + layer.bias if layer.use_bias else logits

        return dense
    if isinstance(layer, keras.layers.Activation):
        return lambda x: tf.cast(x, tf.float32)
    return None


def gradcam(
    cam_model: keras.Model,
    pixels: tf.Tensor,
    head: Head | None = None,
    reference: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Weights and Grad-CAM maps ``[batch, h, w]`` (input resolution, [0, 1]) of the top label.

    ``cam_model`` gives the Grad-CAM layer's activations and either the softmax head's
    input (``head`` maps it to logits) or, without ``head``, the weights themselves.
    Two refinements of the original Grad-CAM, both measured by the pointing game in
    ``bench/model_quality.py``:

    - The score is the top logit's margin over the other labels' logits, averaged with the
      weights those labels have among themselves: the direction of the gradient of the
      top label's log weight, but without the softmax, which saturates (a confident model's
      weight is 1.0 in float32 and its gradient exactly zero). It shows evidence *for* the
      label against its rivals, not evidence every label shares.
    - Each position's activations are weighted by that position's own gradient (HiResCAM)
      rather than by the gradient averaged over the map. The average throws away *where* a
      head looks; a position-aware head (the small CNN's flattened grid) then points at
      whatever is strongest anywhere. For a global-average head the two are the same.
    - With a ``reference`` (the layer's typical activations ``[h, w, channels]``) the map
      weighs the activations' difference from it: missing evidence (ink absent where plots
      usually have it, with a gradient saying that ink would count against the label) is
      positive evidence there, so a dead sector or a missing peak lights up.
    """
    with tf.GradientTape() as tape:
        conv, out = cam_model(pixels, training=False)
        conv = tf.cast(conv, tf.float32)
        if head is None:
            logits = tf.math.log(tf.cast(out, tf.float32) + 1e-12)
        else:
            logits = tf.cast(head(out), tf.float32)
        weights = tf.nn.softmax(logits)
        top = tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1])
        # The rivals' weights among themselves, from their logits (stable when top is sure).
        rivals = tf.stop_gradient(tf.nn.softmax(logits - 1e9 * top))
        score = tf.reduce_sum(logits * top, axis=-1) - tf.reduce_sum(logits * rivals, axis=-1)
    grads = tape.gradient(score, conv)
    if reference is not None:
        conv = conv - tf.cast(reference, tf.float32)[None]
    cam = tf.nn.relu(tf.reduce_sum(conv * grads, axis=-1))
    cam = tf.image.resize(cam[..., None], tf.shape(pixels)[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    # A flat map (no positive evidence) stays all zero rather than dividing by zero.
    cam = tf.math.divide_no_nan(cam, peak)
    return weights, tf.clip_by_value(cam, 0.0, 1.0)


def export_model(
    model: keras.Model,
    model_dir: Path | str,
    name: str,
    version: int,
    labels: Sequence[str],
    *,
    gradcam_layer: str | None = None,
    architecture: Architecture | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as ``<model_dir>/<name>/<version>/`` and return that directory.

    The version is written to a hidden temporary directory first and renamed into place,
    so a model server polling the base path never loads a half-written version.
    """
    if int(model.outputs[0].shape[-1]) != len(labels):
        raise ValueError(f"model has {model.outputs[0].shape[-1]} outputs, {len(labels)} labels")
    layer = gradcam_layer or gradcam_layer_name(model, architecture)
    base = Path(model_dir) / name
    final = base / str(int(version))
    if final.exists():
        raise FileExistsError(f"model version already exists: {final}")
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    module = HydraExportModule(model, layer)
    tf.saved_model.save(
        module,
        str(tmp),
        signatures={"serving_default": module.serving_default, "explain": module.explain},
    )
    meta = {
        "name": name,
        "version": int(version),
        "labels": list(labels),
        "input_height": module.height,
        "input_width": module.width,
        "gradcam_layer": layer,
        **(metadata or {}),
    }
    (tmp / METADATA_FILE).parent.mkdir(parents=True, exist_ok=True)
    (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2))
    tmp.rename(final)
    return final


def export_untrained_model(
    model_dir: Path | str,
    name: str,
    version: int,
    labels: Sequence[str],
    input_size: int | tuple[int, int] = 64,
) -> Path:
    """Export a ``small`` model with random weights (no training): a fast fixture for tests."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    arch = get_architecture("small")
    keras.utils.set_random_seed(0)
    model = arch.build((h, w, 3), len(labels))
    return export_model(model, model_dir, name, version, labels, architecture=arch)


def read_metadata(version_dir: Path | str) -> dict[str, Any]:
    """The Hydra metadata written beside an exported version (labels, input size...)."""
    data: dict[str, Any] = json.loads((Path(version_dir) / METADATA_FILE).read_text())
    return data
