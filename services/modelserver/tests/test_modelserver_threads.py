"""TensorFlow's thread pools are sized from the settings before the first model loads
(HYDRA_TF_INTRA_OP_THREADS, HYDRA_TF_INTER_OP_THREADS); a process whose TensorFlow runtime
is already up keeps its pools. Each case runs in a fresh process: the pools are fixed for
the life of a process once TensorFlow has run an op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from hydra_modelserver.settings import ModelServerSettings
from hydra_trainer.export import export_untrained_model

from .test_modelserver_api import LABELS, png

pytestmark = pytest.mark.tf

PROBE = """
import asyncio, json, sys
import hydra_modelserver.__main__  # the entry point: Keras blocked, nothing of TF run yet
import tensorflow as tf
from hydra_modelserver.service import ModelServerService
from hydra_modelserver.settings import ModelServerSettings
from hydra_modelserver.threads import configure_threads
from prometheus_client import CollectorRegistry

async def main():
    settings = ModelServerSettings(
        model_dir=sys.argv[1], model_server_host="127.0.0.1", model_server_port=0,
        grace_seconds=1,
    )
    service = ModelServerService(settings, CollectorRegistry())
    await service.start()
    try:
        version = service.repository.models["m"][1]
        proto = tf.make_tensor_proto([open(sys.argv[2], "rb").read()])
        out = version.signature("serving_default").run({"image": proto}, [])
    finally:
        await service.stop()
    return {
        "outputs": sorted(out),
        "intra": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter": tf.config.threading.get_inter_op_parallelism_threads(),
        "same_again": configure_threads(
            settings.tf_intra_op_threads, settings.tf_inter_op_threads
        ),
        "changed_after_start": configure_threads(settings.tf_intra_op_threads + 1, 1),
    }

print(json.dumps(asyncio.run(main())))
"""


def _probe(tmp_path: Path, **settings: str) -> dict[str, object]:
    """Start a model server in a fresh process with these ``HYDRA_TF_*`` variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_TF_")}
    export_untrained_model(tmp_path / "models", "m", 1, LABELS, input_size=32)
    image = tmp_path / "plot.png"
    image.write_bytes(png(5))
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "models"), str(image)],
        capture_output=True,
        text=True,
        timeout=280,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2", **settings},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_default_pools_are_tensorflows_own(tmp_path: Path) -> None:
    """One thread each saves CPU on small models but puts a big request on one core: the
    default leaves TensorFlow's sizes (0) alone, and the runtime then keeps them."""
    fields = ModelServerSettings.model_fields
    assert (fields["tf_intra_op_threads"].default, fields["tf_inter_op_threads"].default) == (0, 0)
    found = _probe(tmp_path)
    assert found == {
        "outputs": ["weights"],
        "intra": 0,
        "inter": 0,
        "same_again": True,
        "changed_after_start": False,  # the runtime is up: the pools stay, with a warning
    }


def test_pool_sizes_come_from_the_settings(tmp_path: Path) -> None:
    found = _probe(tmp_path, HYDRA_TF_INTRA_OP_THREADS="1", HYDRA_TF_INTER_OP_THREADS="2")
    assert (found["intra"], found["inter"]) == (1, 2)
    assert found["same_again"] is True and found["changed_after_start"] is False
