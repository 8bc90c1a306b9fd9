"""Training input streams from the files, and the model starts where ``--init`` says.

The pipeline is built over the path list: nothing is decoded until a batch is asked for,
so peak memory does not grow with the number of images (``bench.model_quality`` measures
the peak RSS of ``hydra train`` on N and 10 x N images). Small PNGs, no model server.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hydra_common.errors import InvalidInput
from hydra_trainer.dataset import LabelledImage, build_split_set, expand

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from hydra_trainer.architectures import INCEPTION_NOTOP, get_architecture  # noqa: E402
from hydra_trainer.init import resolve_init  # noqa: E402
from hydra_trainer.train import TrainOptions, fit, make_dataset  # noqa: E402

pytestmark = pytest.mark.tf
LABELS = ["Good", "Bad"]


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _items(folder: Path, n: int, write: bool = True) -> list[LabelledImage]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        if write:
            path.write_bytes(_png(i))
        items.append(LabelledImage(i, str(path), LABELS[i % 2]))
    return items


def test_the_pipeline_decodes_nothing_until_asked(tmp_path: Path) -> None:
    items = _items(tmp_path / "imgs", 40, write=False)
    # Built over files that do not exist yet: building reads nothing.
    ds = make_dataset(items, LABELS, 16, 20, batch_size=8)
    assert ds.element_spec[0].shape.as_list() == [None, 16, 20, 3]
    for i, item in enumerate(items[:20]):
        Path(item.path).write_bytes(_png(i))
    # The first batches decode the files that are there now; the 21st image was never
    # written, so the pipeline fails only when it gets there: it never held the set.
    batches = iter(ds)
    first = next(batches)
    assert first[0].shape == (8, 16, 20, 3) and first[1].shape == (8, 2)
    assert float(tf.reduce_max(first[0])) <= 255.0
    with pytest.raises(tf.errors.NotFoundError, match="img020"):
        for _ in batches:
            pass


def test_sampling_lives_on_the_file_list(tmp_path: Path) -> None:
    items = _items(tmp_path / "imgs", 30)
    items = [LabelledImage(i.plot_id, i.path, "Bad" if i.plot_id < 4 else "Good") for i in items]
    split = build_split_set(items, "oversample", 0.5, seed=1)
    train = expand(split.train)
    # Oversampled: each Bad path repeated; the dataset has exactly that many elements.
    assert sum(1 for i in train if i.label == "Bad") == sum(1 for i in train if i.label == "Good")
    ds = make_dataset(train, LABELS, 16, 20, batch_size=4, shuffle_seed=0)
    seen = sum(int(x.shape[0]) for x, _ in ds)
    assert seen == len(train)


def test_fit_streams_and_names_an_unreadable_image(tmp_path: Path) -> None:
    items = _items(tmp_path / "imgs", 12)
    options = TrainOptions(
        architecture="small", epochs=2, batch_size=4, input_height=24, input_width=32
    )
    result = fit(get_architecture("small"), LABELS, items[:8], items[8:], options)
    assert result.epochs_run == 2 and "val_loss" in result.history
    Path(items[5].path).write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    with pytest.raises(InvalidInput, match="img005"):
        fit(get_architecture("small"), LABELS, items[:8], items[8:], options)


def test_init_imagenet_needs_the_file_and_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    arch = get_architecture("inceptionv3")
    with pytest.raises(InvalidInput, match="ImageNet weights for inceptionv3 not found"):
        resolve_init("imagenet", arch, tmp_path / "weights")
    with pytest.raises(InvalidInput, match="no ImageNet weights"):
        resolve_init("imagenet", get_architecture("small"))
    with pytest.raises(InvalidInput, match="no weights file"):
        resolve_init(str(tmp_path / "nothing.h5"), arch)
    assert resolve_init("random", arch) is None
    assert resolve_init(None, get_architecture("small")) is None  # small starts at random

    # A weights file of our own, in Keras' own format and name, stands in for ImageNet's.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    source = keras.applications.InceptionV3(
        include_top=False, weights=None, input_shape=(75, 75, 3)
    )
    (tmp_path / "weights").mkdir()
    weights_file = tmp_path / "weights" / INCEPTION_NOTOP
    with h5py.File(weights_file, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, source)
    path = resolve_init(None, arch, tmp_path / "weights")  # InceptionV3 defaults to imagenet
    assert path == str(weights_file)

    def first_kernel(m: Any) -> np.ndarray:  # a keras.Model (keras is imported as Any)
        conv = next(la for la in m.layers if isinstance(la, keras.layers.Conv2D))
        return np.asarray(conv.get_weights()[0])

    keras.utils.set_random_seed(8)
    model = arch.build_model((75, 75, 3), 2, path)
    np.testing.assert_array_equal(first_kernel(model), first_kernel(source))
    keras.utils.set_random_seed(8)
    fresh = arch.build_model((75, 75, 3), 2, None)
    assert not np.array_equal(first_kernel(fresh), first_kernel(source))


def test_the_trainer_builds_exactly_what_a_request_may_ask_for() -> None:
    from hydra_common import training
    from hydra_trainer import architectures

    assert set(training.ARCHITECTURES) == set(architectures.ARCHITECTURES)
    assert training.DEFAULT_ARCHITECTURE in training.ARCHITECTURES
    assert set(training.DEFAULT_INIT) == set(training.ARCHITECTURES)
    with pytest.raises(ValueError, match="unknown architecture"):
        get_architecture("resnet")
