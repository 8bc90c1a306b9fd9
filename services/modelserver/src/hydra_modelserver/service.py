"""The bundled model server: TF Serving's gRPC API over the model directory.

It loads the versions it should serve before it starts serving (as TF Serving does): those
the model config file ``HYDRA_MODEL_CONFIG_FILE`` lists when it exists, else every version
under ``HYDRA_MODEL_DIR``; then it re-reads both every ``HYDRA_MODEL_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import REGISTRY, CollectorRegistry
from tensorflow_serving.apis import (
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from hydra_common.grpcserver import RunningServer, start_server
from hydra_common.logs import get_logger
from hydra_common.runner import run_service
from hydra_modelserver.metrics import ModelServerMetrics
from hydra_modelserver.repository import ModelRepository
from hydra_modelserver.servicer import ModelServicer, PredictionServicer
from hydra_modelserver.settings import ModelServerSettings
from hydra_modelserver.threads import configure_threads

log = get_logger(__name__)

PREDICTION_SERVICE = prediction_service_pb2.DESCRIPTOR.services_by_name[
    "PredictionService"
].full_name
MODEL_SERVICE = model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name


class ModelServerService:
    """Serves the model repository over TF Serving's API and keeps it in step with disk."""

    def __init__(
        self, settings: ModelServerSettings, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.metrics = ModelServerMetrics(registry if registry is not None else REGISTRY)
        self.repository = ModelRepository(
            settings.model_root, self.metrics.models_loaded.set, settings.model_config_path
        )
        self.port = 0
        self._server: RunningServer | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load what is on disk, bind the port and start polling for new versions."""
        # Before the first load starts TensorFlow's runtime: its pools are fixed from then on.
        configure_threads(self.settings.tf_intra_op_threads, self.settings.tf_inter_op_threads)
        await self.repository.scan()
        predictions = PredictionServicer(
            self.repository, self.metrics, self.settings.max_image_pixels
        )
        models = ModelServicer(self.repository)
        self._server = await start_server(
            [
                lambda s: prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                    predictions, s
                ),
                lambda s: model_service_pb2_grpc.add_ModelServiceServicer_to_server(models, s),
            ],
            [PREDICTION_SERVICE, MODEL_SERVICE],
            port=self.settings.model_server_port,
            host=self.settings.model_server_host,
        )
        self.port = self._server.port
        self._poller = asyncio.create_task(self._poll(), name="modelserver-poll")
        log.info(
            "model server started",
            extra={
                "port": self.port,
                "model_dir": str(self.settings.model_root),
                "follows": self.repository.following,
                "versions": self.repository.loaded_count,
            },
        )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            try:
                await self.repository.scan()
            except Exception:  # a flaky volume must not stop the poller
                log.exception("model directory scan failed")

    async def rescan(self) -> None:
        """Re-read the config file or model directory now (tests, operators who will not
        wait)."""
        await self.repository.scan()

    async def stop(self) -> None:
        """Stop polling; health NOT_SERVING; let open calls finish within the grace period."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._server is not None:
            await self._server.stop(self.settings.grace_seconds)
            self._server = None
        log.info("model server stopped")


async def main(settings: ModelServerSettings | None = None) -> None:
    """Run the model server until SIGTERM or SIGINT."""
    resolved = settings or ModelServerSettings()
    await run_service("modelserver", resolved, lambda: ModelServerService(resolved))
