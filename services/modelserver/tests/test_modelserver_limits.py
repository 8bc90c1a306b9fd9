"""The model server's bounds: images above HYDRA_MAX_IMAGE_PIXELS are refused from their
header, before TensorFlow decodes them; the heap is trimmed after a big request; its process
starts without Keras. Real gRPC on loopback, real SavedModels."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

tf = pytest.importorskip("tensorflow")

from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from hydra_common.grpcserver import channel  # noqa: E402
from hydra_modelserver.imagesize import image_size  # noqa: E402
from hydra_modelserver.memory import Trimmer, malloc_trim  # noqa: E402
from hydra_modelserver.service import ModelServerService  # noqa: E402
from hydra_modelserver.settings import ModelServerSettings  # noqa: E402
from hydra_trainer.export import export_untrained_model  # noqa: E402

from .test_modelserver_api import LABELS, png, predict_request  # noqa: E402

pytestmark = pytest.mark.tf

MODEL = "ECAL_adcOccupancy"
LIMIT = 100 * 100  # pixels


def encoded(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("PNG", "RGB"), ("PNG", "L"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("GIF", "P"), ("BMP", "RGB")],
)
def test_image_size_is_read_from_the_header(fmt: str, mode: str) -> None:
    for size in ((1, 1), (123, 45), (1000, 700)):
        assert image_size(encoded(fmt, size, mode)) == size, (fmt, size)


def test_image_size_of_what_is_not_an_image_is_unknown() -> None:
    assert image_size(b"") is None
    assert image_size(b"not an image at all") is None
    assert image_size(encoded("PNG", (10, 10))[:20]) is None  # cut inside the header
    assert image_size(b"\xff\xd8\xff\xe0\x00\x10JFIF") is None  # a JPEG cut before its frame


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    model_dir = tmp_path_factory.mktemp("models")
    export_untrained_model(model_dir, MODEL, 1, LABELS, input_size=32)
    service = ModelServerService(
        ModelServerSettings(
            model_dir=model_dir,
            model_config_file=model_dir / "none.config",
            model_server_host="127.0.0.1",
            model_server_port=0,
            max_image_pixels=LIMIT,
            grace_seconds=1,
        ),
        CollectorRegistry(),
    )
    await service.start()
    yield service.port
    await service.stop()


async def test_an_image_above_the_limit_is_refused_and_the_server_keeps_serving(
    limited: int,
) -> None:
    async with channel(f"127.0.0.1:{limited}") as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        big = png(5, 101, 100)  # 10,100 pixels: one row too many
        for signature in ("", "explain"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Predict(predict_request([png(1), big], signature, MODEL), timeout=60)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = err.value.details() or ""
            assert "image[1]" in details and "101 x 100" in details, details
            assert "HYDRA_MAX_IMAGE_PIXELS" in details
        at_limit = png(6, 100, 100)
        response = await stub.Predict(predict_request([png(1), at_limit], "", MODEL), timeout=60)
        assert response.outputs["weights"].tensor_shape.dim[0].size == 2


def _big_requests_alive() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, predict_pb2.PredictRequest) and o.ByteSize() > 1_000_000
    )


async def test_a_refused_request_is_freed_at_once_not_by_the_garbage_collector(
    limited: int,
) -> None:
    """A refused request used to stay in reference cycles (the exception's traceback, gRPC's
    AbortError) until a garbage collection: big refused requests grew the server by 0.8 GB."""
    # Sent as bytes: the only PredictRequest objects in this process are the server's.
    payload = predict_request([png(7, 200, 200) + b"\0" * 3_000_000], "", MODEL)
    raw = payload.SerializeToString()
    del payload
    gc.collect()
    gc.disable()
    try:
        async with channel(f"127.0.0.1:{limited}") as ch:
            predict = ch.unary_unary("/tensorflow.serving.PredictionService/Predict")
            codes = [await _code(predict(raw, timeout=60)) for _ in range(3)]
            assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 3
        for _ in range(100):  # the server's side of the call ends just after the client's
            if _big_requests_alive() == 0:
                break
            await asyncio.sleep(0.05)
        assert _big_requests_alive() == 0
    finally:
        gc.enable()


async def _code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_malloc_trim_is_there() -> None:
    # glibc's malloc_trim: True when it released memory, False when there was none to give.
    assert malloc_trim() in (True, False)


async def test_the_heap_is_trimmed_once_after_big_requests_only() -> None:
    trimmer = Trimmer(threshold=1000, delay=0.01)
    trimmer.note(999)
    await asyncio.sleep(0.1)
    assert trimmer.trims == 0
    for _ in range(5):  # a burst of big requests: one trim after it
        trimmer.note(5000)
    for _ in range(200):
        if trimmer.trims:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    assert trimmer.trims == 1


PROBE = """
import json, sys
import hydra_modelserver.__main__  # the entry point of `python -m hydra_modelserver`
from pathlib import Path
from hydra_modelserver.repository import load_version
import tensorflow as tf
version = load_version("m", 1, Path(sys.argv[1]))
proto = tf.make_tensor_proto([open(sys.argv[2], "rb").read()])
out = version.signature("explain").run({"image": proto}, [])
print(json.dumps({
    "outputs": sorted(out),
    "keras": sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tf_keras")
                    and sys.modules[m] is not None),
    "matplotlib": "matplotlib" in sys.modules,
}))
"""


def test_the_model_server_process_serves_without_keras(tmp_path: Path) -> None:
    """TensorFlow imports Keras (and matplotlib) eagerly, a third of its start-up; the model
    server's entry point blocks it, and a trainer-exported SavedModel serves all the same."""
    version = export_untrained_model(tmp_path, "m", 1, LABELS, input_size=32)
    image = tmp_path / "plot.png"
    image.write_bytes(png(3))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(version), str(image)],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"outputs": ["heatmap", "weights"], "keras": [], "matplotlib": False}
