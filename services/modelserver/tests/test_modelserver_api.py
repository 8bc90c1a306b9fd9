"""The bundled model server against TF Serving's own client stubs, with real SavedModels.

One server per module (TensorFlow start-up is the slow part); every test talks to it over
real gRPC on loopback.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from prometheus_client import CollectorRegistry

tf = pytest.importorskip("tensorflow")

from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from hydra_common.grpcserver import channel  # noqa: E402
from hydra_modelserver.repository import tensor_to_proto  # noqa: E402
from hydra_modelserver.service import ModelServerService  # noqa: E402
from hydra_modelserver.settings import ModelServerSettings  # noqa: E402
from hydra_trainer.export import export_untrained_model  # noqa: E402

pytestmark = pytest.mark.tf

LABELS = ["Good", "Bad", "NoData"]
MODEL = "FTOF_adcTime_s1"


def png(seed: int, width: int = 96, height: int = 80) -> bytes:
    """A real PNG of random pixels."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def image_tensor(images: list[bytes]) -> tensor_pb2.TensorProto:
    """A DT_STRING [batch] tensor, as the predictor builds it (no TensorFlow helpers)."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(images))]
        ),
        string_val=images,
    )


def predict_request(
    images: list[bytes], signature: str = "", name: str = MODEL, version: int | None = None
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["image"].CopyFrom(image_tensor(images))
    return request


class Server:
    """The running service plus stubs on one channel."""

    def __init__(self, service: ModelServerService, model_dir: Path, registry: CollectorRegistry):
        self.service = service
        self.model_dir = model_dir
        self.registry = registry
        self.channel = channel(f"127.0.0.1:{service.port}")
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    model_dir = tmp_path_factory.mktemp("models")
    export_untrained_model(model_dir, MODEL, 1, LABELS, input_size=32)
    registry = CollectorRegistry()
    settings = ModelServerSettings(
        model_dir=model_dir,
        model_server_host="127.0.0.1",
        model_server_port=0,
        model_poll_seconds=0.2,
        grace_seconds=1,
    )
    service = ModelServerService(settings, registry)
    await service.start()
    srv = Server(service, model_dir, registry)
    yield srv
    await srv.channel.close()
    await service.stop()


def floats(proto: tensor_pb2.TensorProto) -> np.ndarray:
    shape = [d.size for d in proto.tensor_shape.dim]
    return np.asarray(proto.float_val, dtype=np.float32).reshape(shape)


async def test_predict_serving_default(server: Server) -> None:
    images = [png(1), png(2, 200, 120), png(3, 30, 30)]
    response = await server.predict.Predict(predict_request(images), timeout=60)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert set(response.outputs) == {"weights"}
    weights = response.outputs["weights"]
    # TF Serving's default encoding: typed repeated fields, not tensor_content.
    assert weights.dtype == types_pb2.DT_FLOAT and not weights.tensor_content
    values = floats(weights)
    assert values.shape == (3, len(LABELS))
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-5)
    # The server's answer equals TensorFlow's own for the same SavedModel.
    loaded = tf.saved_model.load(str(server.model_dir / MODEL / "1"))
    expected = loaded.signatures["serving_default"](image=tf.constant(images))["weights"]
    np.testing.assert_allclose(values, expected.numpy(), atol=1e-5)


async def test_predict_explain_and_output_filter(server: Server) -> None:
    images = [png(4), png(5)]
    response = await server.predict.Predict(predict_request(images, "explain"), timeout=60)
    assert response.model_spec.signature_name == "explain"
    assert set(response.outputs) == {"weights", "heatmap"}
    heat = floats(response.outputs["heatmap"])
    assert heat.shape == (2, 32, 32)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    request = predict_request(images, "explain")
    request.output_filter.append("heatmap")
    response = await server.predict.Predict(request, timeout=60)
    assert set(response.outputs) == {"heatmap"}


async def test_model_metadata(server: Server) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = await server.predict.GetModelMetadata(request, timeout=30)
    assert response.model_spec.name == MODEL and response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    defs = signature_map.signature_def
    assert {"serving_default", "explain"} <= set(defs)
    assert defs["serving_default"].inputs["image"].dtype == types_pb2.DT_STRING
    assert set(defs["serving_default"].outputs) == {"weights"}
    assert set(defs["explain"].outputs) == {"weights", "heatmap"}

    request.ClearField("metadata_field")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.predict.GetModelMetadata(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_model_status(server: Server) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = await server.models.GetModelStatus(request, timeout=30)
    states = {s.version: s.state for s in response.model_version_status}
    assert states.get(1) == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    request.model_spec.version.value = 99
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.models.GetModelStatus(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_model_and_version_are_not_found(server: Server) -> None:
    for request in (
        predict_request([png(6)], name="no_such_model"),
        predict_request([png(6)], version=12345),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.predict.Predict(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Servable not found" in (err.value.details() or "")
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "no_such_model"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.models.GetModelStatus(status, timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_requests_are_refused_and_the_server_keeps_serving(server: Server) -> None:
    not_an_image = predict_request([b"this is not a png"])
    wrong_dtype = predict_request([png(7)])
    wrong_dtype.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((1,), np.float32)))
    wrong_name = predict_request([png(7)])
    wrong_name.inputs["pixels"].CopyFrom(wrong_name.inputs.pop("image"))
    extra_input = predict_request([png(7)])
    extra_input.inputs["extra"].CopyFrom(image_tensor([png(7)]))
    wrong_rank = predict_request([png(7)])
    wrong_rank.inputs["image"].tensor_shape.dim.add(size=1)
    bad_filter = predict_request([png(7)])
    bad_filter.output_filter.append("logits")
    for request in (not_an_image, wrong_dtype, wrong_name, extra_input, wrong_rank, bad_filter):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await server.predict.Predict(request, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request

    # TF Serving answers FAILED_PRECONDITION for a signature key the model lacks.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.predict.Predict(predict_request([png(7)], "no_such_signature"), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert 'Serving signature key "no_such_signature" not found.' == err.value.details()

    response = await server.predict.Predict(predict_request([png(8)]), timeout=60)
    assert floats(response.outputs["weights"]).shape == (1, len(LABELS))
    health = await server.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    refused = server.registry.get_sample_value(
        "hydra_modelserver_requests_total",
        {"signature": "serving_default", "outcome": "invalid_argument"},
    )
    assert refused is not None and refused >= 6


async def test_new_version_is_loaded_and_both_are_served(server: Server) -> None:
    # Written elsewhere and moved in, then picked up by the poller (no explicit rescan).
    staging = server.model_dir.parent / "staging"
    export_untrained_model(staging, MODEL, 2, LABELS, input_size=32)
    shutil.move(staging / MODEL / "2", server.model_dir / MODEL / "2")
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    for _ in range(600):  # generous: loading competes with other work on a busy machine
        response = await server.models.GetModelStatus(request, timeout=30)
        if {s.version for s in response.model_version_status} >= {1, 2}:
            break
        await asyncio.sleep(0.1)
    assert {s.version for s in response.model_version_status} == {1, 2}

    latest = await server.predict.Predict(predict_request([png(9)]), timeout=60)
    assert latest.model_spec.version.value == 2
    pinned = await server.predict.Predict(predict_request([png(9)], version=1), timeout=60)
    assert pinned.model_spec.version.value == 1
    loaded = server.registry.get_sample_value("hydra_modelserver_models_loaded")
    assert loaded == 2


async def test_broken_version_is_reported_not_fatal(server: Server) -> None:
    broken = server.model_dir / "broken_model" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a saved model")
    await server.service.rescan()
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "broken_model"
    response = await server.models.GetModelStatus(request, timeout=30)
    (status,) = response.model_version_status
    assert status.state == get_model_status_pb2.ModelVersionStatus.END
    assert status.status.error_message
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.predict.Predict(predict_request([png(10)], name="broken_model"), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Removing a version from disk unloads it.
    shutil.rmtree(broken.parent)
    await server.service.rescan()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.models.GetModelStatus(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_outputs_are_encoded_in_typed_fields_exactly(dtype: type) -> None:
    """Float outputs are parsed from the array's bytes (packed wire form); the message is
    the one TF Serving's typed-field encoding gives, value for value, NaN and -0.0 too."""
    rng = np.random.default_rng(0)
    field = {
        np.float32: "float_val",
        np.float64: "double_val",
        np.int32: "int_val",
        np.int64: "int64_val",
        np.bool_: "bool_val",
    }[dtype]
    for shape in [(0,), (1, 3), (2, 3), (2, 17, 5)]:
        array: np.ndarray = (rng.random(shape) * 100 - 50).astype(dtype)
        if array.size and np.issubdtype(dtype, np.floating):
            array.flat[0] = np.nan
            array.flat[-1] = -0.0
        expected = tensor_pb2.TensorProto(dtype=tf.as_dtype(dtype).as_datatype_enum)
        for size in shape:
            expected.tensor_shape.dim.add(size=size)
        getattr(expected, field).extend(array.ravel().tolist())
        proto = tensor_to_proto(array)
        assert not proto.tensor_content
        assert proto.SerializeToString() == expected.SerializeToString()
        np.testing.assert_array_equal(tf.make_ndarray(proto), array)
        # Non-contiguous input (a transposed view) keeps its logical order.
        if len(shape) == 2:
            view = array.T
            np.testing.assert_array_equal(tf.make_ndarray(tensor_to_proto(view)), view)
