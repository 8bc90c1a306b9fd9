"""Grad-CAM of the explain signature: the contract, and a map that points at the evidence."""

from __future__ import annotations

import io
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from PIL import Image

from hydra_trainer.architectures import CamReference
from hydra_trainer.export import export_model

SIZE = 32
REGION = (slice(20, 28), slice(4, 12))  # rows, columns where the toy model sees Bad
DECOY = (slice(2, 10), slice(18, 28))  # darker ink than the region, but no evidence


def _toy_model() -> keras.Model:
    """Ink (1 - pixel/255) -> Flatten -> Dense: only ink inside REGION raises Bad's logit."""
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(-1.0 / 255.0, offset=1.0)(inputs)
    ink = layers.Conv2D(1, 1, use_bias=False, activation="relu", name="ink")(x)
    flat = layers.Flatten()(ink)
    outputs = layers.Dense(2, activation="softmax", name="weights")(flat)
    model = keras.Model(inputs, outputs)
    model.get_layer("ink").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    kernel = np.zeros((SIZE * SIZE, 2), np.float32)
    region = np.zeros((SIZE, SIZE), np.float32)
    region[REGION] = 1.0
    kernel[:, 1] = region.ravel()  # Bad: ink in the region; Good: nothing
    model.get_layer("weights").set_weights([kernel, np.zeros(2, np.float32)])
    return model


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_explain_points_at_the_evidence_not_the_darkest_ink(tmp_path: Path) -> None:
    version = export_model(_toy_model(), tmp_path, "toy", 1, ["Good", "Bad"], gradcam_layer="ink")
    image = np.full((SIZE, SIZE, 3), 255.0)
    image[DECOY] = 0.0  # full ink: the strongest activation, but no weight on it
    image[REGION] = 140.0  # weaker ink where the Bad evidence is
    blank = np.full((SIZE, SIZE, 3), 255.0)
    explain = tf.saved_model.load(str(version)).signatures["explain"]
    out = explain(image=tf.constant([_png(image), _png(blank)]))
    weights, heat = out["weights"].numpy(), out["heatmap"].numpy()
    assert weights.shape == (2, 2) and heat.shape == (2, SIZE, SIZE)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    assert int(np.argmax(weights[0])) == 1  # the toy model calls it Bad
    y, x = np.unravel_index(int(np.argmax(heat[0])), heat[0].shape)
    assert REGION[0].start <= y < REGION[0].stop and REGION[1].start <= x < REGION[1].stop
    assert heat[0].max() == 1.0 and heat[0][DECOY].max() < 0.05
    assert heat[1].max() == 0.0  # no evidence at all: a flat map, not a division by zero


def _missing_evidence_model() -> keras.Model:
    """Ink inside REGION speaks for Good; Bad is the absence of that ink (a dead region)."""
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(-1.0 / 255.0, offset=1.0)(inputs)
    ink = layers.Conv2D(1, 1, use_bias=False, activation="relu", name="ink")(x)
    ref = CamReference(name="cam_reference")(ink)
    outputs = layers.Dense(2, activation="softmax", name="weights")(layers.Flatten()(ref))
    model = keras.Model(inputs, outputs)
    model.get_layer("ink").set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    region = np.zeros((SIZE, SIZE), np.float32)
    region[REGION] = 1.0
    kernel = np.stack([region.ravel(), -region.ravel()], axis=1).astype(np.float32)
    model.get_layer("weights").set_weights([kernel, np.array([0.0, 1.0], np.float32)])
    return model


def test_training_keeps_a_reference_and_missing_evidence_lights_up(tmp_path: Path) -> None:
    model = _missing_evidence_model()
    good = np.full((SIZE, SIZE, 3), 255.0, np.float32)
    good[REGION] = 0.0  # a typical plot: ink in the region
    good[DECOY] = 0.0  # and elsewhere
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="categorical_crossentropy")
    model.fit(good[None].repeat(4, 0), np.array([[1.0, 0.0]] * 4), epochs=2, verbose=0)
    reference = model.get_layer("cam_reference").reference.numpy()
    assert reference.shape == (SIZE, SIZE, 1)
    assert reference[REGION].min() > 0.99 and reference[0, 0, 0] == 0.0  # the mean ink map

    version = export_model(
        model, tmp_path, "dead", 1, ["Good", "Bad"], gradcam_layer="cam_reference"
    )
    dead = good.copy()
    dead[REGION] = 255.0  # the region's ink is gone: Bad, by missing evidence
    explain = tf.saved_model.load(str(version)).signatures["explain"]
    out = explain(image=tf.constant([_png(dead)]))
    weights, heat = out["weights"].numpy()[0], out["heatmap"].numpy()[0]
    assert int(np.argmax(weights)) == 1
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert REGION[0].start <= y < REGION[0].stop and REGION[1].start <= x < REGION[1].stop
    assert heat[DECOY].max() < 0.05
