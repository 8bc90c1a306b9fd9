"""TF Serving's client stubs, without loading TensorFlow.

The ``tensorflow-serving-api`` stubs import their message types from
``tensorflow.core.framework``; a plain import of that package runs ``tensorflow/__init__``,
which loads all of TensorFlow (about 10 s and hundreds of MB per predictor replica) for a
few protobuf classes. When TensorFlow is not loaded yet, the stubs are imported with a bare
``tensorflow`` package object standing in for the real one, which is then taken out of
``sys.modules`` again, so a later ``import tensorflow`` (the model server in the same test
process) runs normally and shares the same message classes.

Tensors are built and read here with protobuf and numpy only.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

import numpy as np


def _import_stubs() -> dict[str, Any]:
    names = (
        "tensorflow_serving.apis.predict_pb2",
        "tensorflow_serving.apis.prediction_service_pb2_grpc",
        "tensorflow_serving.apis.get_model_metadata_pb2",
        "tensorflow.core.framework.tensor_pb2",
        "tensorflow.core.framework.tensor_shape_pb2",
        "tensorflow.core.framework.types_pb2",
    )
    if "tensorflow" in sys.modules:
        return {n: importlib.import_module(n) for n in names}
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return {n: importlib.import_module(n) for n in names}
    before = set(sys.modules)
    shell = types.ModuleType("tensorflow")
    shell.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = shell
    try:
        return {n: importlib.import_module(n) for n in names}
    finally:
        for name in [m for m in sys.modules if m not in before]:
            if name == "tensorflow" or name.startswith("tensorflow."):
                del sys.modules[name]


_stubs = _import_stubs()
predict_pb2: Any = _stubs["tensorflow_serving.apis.predict_pb2"]
prediction_service_pb2_grpc: Any = _stubs["tensorflow_serving.apis.prediction_service_pb2_grpc"]
get_model_metadata_pb2: Any = _stubs["tensorflow_serving.apis.get_model_metadata_pb2"]
tensor_pb2: Any = _stubs["tensorflow.core.framework.tensor_pb2"]
tensor_shape_pb2: Any = _stubs["tensorflow.core.framework.tensor_shape_pb2"]
types_pb2: Any = _stubs["tensorflow.core.framework.types_pb2"]

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"


def string_tensor(values: Sequence[bytes]) -> Any:
    """A DT_STRING tensor of shape ``[len(values)]`` (the models' ``image`` input)."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]
        ),
        string_val=list(values),
    )


_NUMPY_TYPES = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
}


def float_array(proto: Any) -> np.ndarray:
    """A float tensor as a float32 numpy array.

    Reads both encodings a TF Serving may send: the typed repeated field (its default) and
    packed ``tensor_content`` (``--use_tensor_content``); a single value is broadcast to the
    shape, as TensorFlow does.
    """
    if proto.dtype not in _NUMPY_TYPES:
        raise ValueError(f"expected a float tensor, got {types_pb2.DataType.Name(proto.dtype)}")
    np_type, field = _NUMPY_TYPES[proto.dtype]
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    size = int(np.prod(shape)) if shape else 1
    if proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=np_type)
    elif proto.dtype == types_pb2.DT_HALF:
        # half_val holds the float16 bit patterns in int32s.
        values = np.asarray(proto.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(proto, field), dtype=np_type)
    if values.size == 1 and size > 1:
        values = np.full(size, values[0], dtype=np_type)
    if values.size != size:
        raise ValueError(f"tensor holds {values.size} values for shape {list(shape)}")
    return values.astype(np.float32, copy=False).reshape(shape)
