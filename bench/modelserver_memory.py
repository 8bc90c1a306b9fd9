"""The bundled model server's memory around oversized requests, and its start-up time.

    python -m bench.modelserver_memory        # figures to bench/results/modelserver_memory.json

The model server runs as its own process (``python -m hydra_modelserver``, as ``hydra up``
runs it) on a small model. Measured from its ``/proc/<pid>/status``:

- ``refused``: eight requests with a 7,000 x 7,000 PNG of 40 MB each (above
  ``HYDRA_MAX_IMAGE_PIXELS``: refused from the header, never decoded). The issue saw such
  requests grow the server from 0.8 to 1.6 GB and keep it (the requests stayed in reference
  cycles until a garbage collection; gRPC's and protobuf's pieces stayed in malloc's arenas).
  ``kept_mb`` is what the process still holds 2 s after the last one.
- ``processed``: four requests with a 4,000 x 4,000 PNG (at the limit: decoded and resized
  in the graph): the peak (VmHWM) and what is kept.
- ``start_s``: spawn to the first answered Predict, with the entry point that keeps Keras out
  of the process, and ``start_with_keras_s`` the same server started without it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from PIL import Image

MODEL = "m"
WITH_KERAS = "import asyncio; from hydra_modelserver.service import main; asyncio.run(main())"


def _png(width: int, height: int, noise: bool) -> bytes:
    pixels = np.full((height, width, 3), 240, np.uint8)
    pixels[::50] = 0
    pixels[:, ::50, 1] = 100
    if noise:  # a plot with fine structure compresses badly: a big request
        rng = np.random.default_rng(0)
        pixels[:, :, 0] = rng.integers(0, 16, (height, width), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of a process in MB."""
    rss = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return round(rss, 1), round(peak, 1)


class Served:
    """A model server process and a Predict method on one channel."""

    def __init__(self, model_dir: Path, command: list[str]) -> None:
        from hydra_common.launcher import free_ports

        port, metrics = free_ports(2)
        env = {
            **os.environ,
            "HYDRA_MODEL_DIR": str(model_dir),
            "HYDRA_MODEL_CONFIG_FILE": str(model_dir / "absent.config"),
            "HYDRA_MODEL_SERVER_HOST": "127.0.0.1",
            "HYDRA_MODEL_SERVER_PORT": str(port),
            "HYDRA_METRICS_HOST": "127.0.0.1",
            "HYDRA_METRICS_PORT": str(metrics),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 256 << 20)]
        )
        self.predict = self.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")

    def call(self, images: list[bytes]) -> str:
        """Predict on ``images``; the status code's name."""
        from tensorflow_serving.apis import predict_pb2

        from hydra_predictor.tfs import string_tensor

        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["image"].CopyFrom(string_tensor(images))
        try:
            self.predict(request.SerializeToString(), timeout=300)
        except grpc.RpcError as exc:
            return str(exc.code().name)
        return "OK"

    def wait_serving(self, probe: bytes, timeout: float = 600.0) -> float:
        """Seconds from spawn to the first answered Predict."""
        deadline = time.monotonic() + timeout
        while self.call([probe]) != "OK":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the model server did not start")
            time.sleep(0.2)
        return time.monotonic() - self.started

    def memory(self) -> tuple[float, float]:
        """(RSS, peak) in MB."""
        return _memory(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(60)


def measure(quick: bool = False) -> dict[str, Any]:
    """The figures (``quick`` skips the start-up comparison)."""
    from hydra_trainer.export import export_untrained_model

    model_dir = Path(tempfile.mkdtemp(prefix="hydra-msmem-"))
    export_untrained_model(model_dir, MODEL, 1, ["Good", "Bad", "NoData"], 64)
    small = _png(400, 300, noise=False)
    oversized = _png(7000, 7000, noise=True)
    at_limit = _png(4000, 4000, noise=False)
    figures: dict[str, Any] = {
        "oversized_request_mb": round(len(oversized) / 1e6, 1),
        "at_limit_request_mb": round(len(at_limit) / 1e6, 1),
    }
    served = Served(model_dir, [sys.executable, "-m", "hydra_modelserver"])
    try:
        figures["start_s"] = round(served.wait_serving(small), 2)
        for _ in range(5):
            served.call([small])
        start, _ = served.memory()
        codes = [served.call([oversized]) for _ in range(8)]
        after, peak = served.memory()
        time.sleep(2.0)
        for _ in range(5):
            served.call([small])
        settled, _ = served.memory()
        figures["refused"] = {
            "codes": sorted(set(codes)),
            "rss_start_mb": start,
            "rss_after_mb": after,
            "rss_peak_mb": peak,
            "rss_settled_mb": settled,
            "kept_mb": round(settled - start, 1),
        }
        codes = [served.call([at_limit]) for _ in range(4)]
        time.sleep(2.0)
        rss, peak = served.memory()
        figures["processed"] = {
            "codes": sorted(set(codes)),
            "rss_peak_mb": peak,
            "rss_settled_mb": rss,
            "kept_mb": round(rss - settled, 1),
        }
    finally:
        served.stop()
    if not quick:
        keras = Served(model_dir, [sys.executable, "-c", WITH_KERAS])
        try:
            figures["start_with_keras_s"] = round(keras.wait_serving(small), 2)
        finally:
            keras.stop()
        figures["start_ratio"] = round(figures["start_s"] / figures["start_with_keras_s"], 2)
    return figures


def main() -> None:
    """Measure, print and record."""
    from bench.results import record

    figures = measure()
    print(json.dumps(figures, indent=2))
    print(f"figures written to {record('modelserver_memory', figures)}")


if __name__ == "__main__":
    main()
