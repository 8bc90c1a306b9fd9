"""The predictor's parts that need no servers: tensors, batching, weights and heat maps."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest
from hydra.v1 import order_pb2

from hydra_predictor.catalog import ActiveModel
from hydra_predictor.inference import Batcher, heat_map, normalise
from hydra_predictor.tfs import float_array, string_tensor, tensor_pb2, types_pb2


def test_predictor_does_not_load_tensorflow() -> None:
    # A fresh interpreter: the TF Serving stubs must come without TensorFlow's runtime.
    code = (
        "import sys, hydra_predictor.service, hydra_predictor.tfs as t;"
        "assert t.predict_pb2.PredictRequest;"
        "print(sorted(m for m in sys.modules if m.startswith('tensorflow.python'))[:3])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_string_tensor_shape_and_values() -> None:
    proto = string_tensor([b"a", b"bc"])
    assert proto.dtype == types_pb2.DT_STRING
    assert [d.size for d in proto.tensor_shape.dim] == [2]
    assert list(proto.string_val) == [b"a", b"bc"]


def _float_tensor(shape: list[int]) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def test_float_array_reads_field_and_content_encodings() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3) / 10
    field = _float_tensor([2, 3])
    field.float_val.extend(values.ravel().tolist())
    content = _float_tensor([2, 3])
    content.tensor_content = values.tobytes()
    np.testing.assert_array_equal(float_array(field), values)
    np.testing.assert_array_equal(float_array(content), values)
    single = _float_tensor([2, 2])
    single.float_val.append(0.5)  # one value fills the shape, as in TensorFlow
    np.testing.assert_array_equal(float_array(single), np.full((2, 2), 0.5, np.float32))


def test_float_array_refuses_wrong_sizes_and_types() -> None:
    short = _float_tensor([2, 3])
    short.float_val.extend([1.0, 2.0])
    with pytest.raises(ValueError, match="2 values"):
        float_array(short)
    with pytest.raises(ValueError, match="DT_STRING"):
        float_array(string_tensor([b"x"]))


def test_normalise_and_heat_map() -> None:
    assert normalise(np.array([2.0, 1.0, 1.0])) == [0.5, 0.25, 0.25]
    assert normalise(np.array([0.0, 0.0])) == [0.0, 0.0]
    heat = heat_map(np.array([[0.0, 2.0], [np.nan, 0.5]], dtype=np.float32))
    assert (heat.height, heat.width) == (2, 2)
    assert list(heat.values) == [0.0, 1.0, 0.0, 0.5]


def _model(model_id: int) -> ActiveModel:
    return ActiveModel(model_id, f"m{model_id}", 1, ("Good", "Bad"), frozenset({1}))


def _order(i: int) -> order_pb2.InferenceOrder:
    return order_pb2.InferenceOrder(order_id=f"o{i}", plot_type="p")


async def test_batcher_groups_per_model_by_size_and_by_wait() -> None:
    batches: list[tuple[int, list[str]]] = []

    async def run(model: ActiveModel, orders: list[order_pb2.InferenceOrder]) -> None:
        batches.append((model.model_id, [o.order_id for o in orders]))

    batcher = Batcher(max_batch=3, max_wait_ms=50, run=run)
    for i in range(4):
        batcher.add(_model(1), _order(i))
    batcher.add(_model(2), _order(10))
    await asyncio.sleep(0)  # the full batch went at once, the others wait
    assert batches == [(1, ["o0", "o1", "o2"])]
    for _ in range(500):
        if len(batches) == 3:
            break
        await asyncio.sleep(0.01)
    assert sorted(batches) == [(1, ["o0", "o1", "o2"]), (1, ["o3"]), (2, ["o10"])]
    await batcher.close()
    assert len(batches) == 3


async def test_batcher_close_sends_open_batches() -> None:
    batches: list[list[str]] = []

    async def run(model: ActiveModel, orders: list[order_pb2.InferenceOrder]) -> None:
        batches.append([o.order_id for o in orders])

    batcher = Batcher(max_batch=10, max_wait_ms=60_000, run=run)
    batcher.add(_model(1), _order(1))
    await batcher.close()
    assert batches == [["o1"]]


async def test_batcher_abandon_cancels_running_and_open_batches() -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def run(model: ActiveModel, orders: list[order_pb2.InferenceOrder]) -> None:
        started.set()
        await asyncio.sleep(3600)
        finished.append(orders[0].order_id)

    batcher = Batcher(max_batch=1, max_wait_ms=60_000, run=run)
    batcher.add(_model(1), _order(1))  # full: runs at once
    await asyncio.wait_for(started.wait(), 10)
    batcher2 = Batcher(max_batch=5, max_wait_ms=60_000, run=run)
    batcher2.add(_model(1), _order(2))  # open, waiting for more
    await asyncio.wait_for(batcher.abandon(), 10)
    await asyncio.wait_for(batcher2.abandon(), 10)
    await asyncio.sleep(0)
    assert finished == []
    assert batcher._tasks == set()
