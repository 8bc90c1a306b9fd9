"""Export a real (untrained) model and call both signatures on real PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from hydra_trainer.export import export_untrained_model, read_metadata  # noqa: E402

pytestmark = pytest.mark.tf


def _png(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_rgba_png() -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    Image.new("RGB", (50, 30), (200, 10, 10)).save(buf, format="JPEG")
    rgba = io.BytesIO()
    Image.new("RGBA", (80, 40), (0, 0, 255, 128)).save(rgba, format="PNG")
    return buf.getvalue(), rgba.getvalue()


def test_export_layout_and_signatures(tmp_path: Path) -> None:
    labels = ["Good", "Bad", "NoData"]
    path = export_untrained_model(tmp_path, "ECAL_adcOccupancy", 3, labels, input_size=64)
    assert path == tmp_path / "ECAL_adcOccupancy" / "3"
    assert (path / "saved_model.pb").is_file()
    assert read_metadata(path)["labels"] == labels
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]

    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "explain"}
    jpeg, rgba = _jpeg_rgba_png()
    # Images of different sizes and formats in one batch: resizing is inside the graph.
    batch = tf.constant([_png(256, 192, 1), _png(100, 300, 2), jpeg, rgba])

    out = loaded.signatures["serving_default"](image=batch)
    assert set(out) == {"weights"}
    weights = out["weights"].numpy()
    assert weights.shape == (4, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)

    out = loaded.signatures["explain"](image=batch)
    assert set(out) == {"weights", "heatmap"}
    np.testing.assert_allclose(out["weights"].numpy(), weights, atol=1e-5)
    heat = out["heatmap"].numpy()
    assert heat.shape == (4, 64, 64)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    # Each non-flat map is scaled so its peak is exactly 1.
    for m in heat:
        assert m.max() == pytest.approx(1.0, abs=1e-5) or m.max() == 0.0

    sig = loaded.signatures["serving_default"]
    spec = sig.structured_input_signature[1]["image"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]


def test_existing_version_and_unreadable_image_fail_cleanly(tmp_path: Path) -> None:
    path = export_untrained_model(tmp_path, "m", 1, ["Good", "Bad"], input_size=32)
    with pytest.raises(FileExistsError):
        export_untrained_model(tmp_path, "m", 1, ["Good", "Bad"], input_size=32)
    loaded = tf.saved_model.load(str(path))
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_default"](image=tf.constant([b"not an image"]))
