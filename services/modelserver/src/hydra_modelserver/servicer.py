"""TF Serving's gRPC API over the model repository: PredictionService and ModelService.

Requests, responses, status codes and error texts follow TF Serving, so a client (the
predictor) cannot tell this server from ``tensorflow/serving``. TensorFlow work runs in a
worker thread, keeping the event loop free for other calls and health checks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from hydra_common.errors import HydraError, InvalidInput, ModelNotFound
from hydra_common.logs import get_logger
from hydra_modelserver.imagesize import check_image_sizes
from hydra_modelserver.memory import Trimmer
from hydra_modelserver.metrics import ModelServerMetrics, signature_label
from hydra_modelserver.repository import DEFAULT_SIGNATURE, LoadedVersion, ModelRepository

log = get_logger(__name__)

SIGNATURE_DEF_FIELD = "signature_def"
DEFAULT_MAX_IMAGE_PIXELS = 16_000_000  # ModelServerSettings.max_image_pixels
# A request this big leaves its pieces in malloc's arenas: trim the heap after it.
TRIM_REQUEST_BYTES = 16 * 1024 * 1024
_OUTCOMES = {
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_argument",
}


def _model_spec(target: Any, version: LoadedVersion, signature_name: str | None) -> None:
    target.name = version.name
    target.version.value = version.version
    if signature_name is not None:
        target.signature_name = signature_name


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``: Predict and GetModelMetadata."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: ModelServerMetrics,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        trimmer: Trimmer | None = None,
    ) -> None:
        self.repository = repository
        self.metrics = metrics
        self.max_image_pixels = max_image_pixels
        self.trimmer = trimmer or Trimmer(TRIM_REQUEST_BYTES)

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        """Run a signature of a model version on the request's input tensors."""
        try:
            return await self._predict(request)
        finally:
            self.trimmer.note(request.ByteSize())  # its memory goes back once it is released

    async def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        label = signature_label(signature_name)
        started = time.perf_counter()
        try:
            if not request.HasField("model_spec"):
                raise InvalidInput("Missing ModelSpec")
            version = self.repository.resolve(request.model_spec)
            signature = version.signature(signature_name)
            check_image_sizes(request.inputs, self.max_image_pixels)
            outputs = await asyncio.to_thread(
                signature.run, request.inputs, list(request.output_filter)
            )
        except HydraError as exc:
            outcome = _OUTCOMES.get(getattr(exc, "grpc_code", None), "error")
            self.metrics.requests.labels(label, outcome).inc()
            log.info(
                "predict refused",
                extra={
                    "model": request.model_spec.name,
                    "signature": signature_name,
                    "error": str(exc),
                },
            )
            raise
        except Exception:
            self.metrics.requests.labels(label, "error").inc()
            raise
        self.metrics.predict_seconds.observe(time.perf_counter() - started)
        self.metrics.requests.labels(label, "ok").inc()
        response = predict_pb2.PredictResponse()
        _model_spec(response.model_spec, version, signature_name)
        for alias, proto in outputs.items():
            response.outputs[alias].CopyFrom(proto)
        return response

    async def GetModelMetadata(
        self,
        request: get_model_metadata_pb2.GetModelMetadataRequest,
        context: grpc.aio.ServicerContext,
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """The signature definitions of a model version (``metadata_field: signature_def``)."""
        if not request.HasField("model_spec"):
            raise InvalidInput("Missing ModelSpec")
        if not request.metadata_field:
            raise InvalidInput("GetModelMetadataRequest must specify at least one metadata_field")
        for name in request.metadata_field:
            if name != SIGNATURE_DEF_FIELD:
                raise InvalidInput(f"Metadata field {name} is not supported")
        version = self.repository.resolve(request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in version.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _model_spec(response.model_spec, version, None)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Not offered: Hydra's models export predict signatures only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported")

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Not offered: Hydra's models export predict signatures only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported")

    async def MultiInference(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Not offered: Hydra's models export predict signatures only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService``: the state of each model version."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    async def GetModelStatus(
        self,
        request: get_model_status_pb2.GetModelStatusRequest,
        context: grpc.aio.ServicerContext,
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """AVAILABLE for loaded versions, END (with the error) for versions that failed."""
        spec = request.model_spec
        if not request.HasField("model_spec") or not spec.name:
            raise InvalidInput("Missing ModelSpec")
        states: dict[int, tuple[int, int, str]] = {}
        for (name, version), failed in self.repository.failed.items():
            if name == spec.name:
                states[version] = (
                    get_model_status_pb2.ModelVersionStatus.END,
                    grpc.StatusCode.UNKNOWN.value[0],
                    failed.error,
                )
        for version in self.repository.models.get(spec.name, {}):
            states[version] = (get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0, "")
        if spec.HasField("version"):
            wanted = spec.version.value
            if wanted not in states:
                raise ModelNotFound(f"Could not find version {wanted} of model {spec.name}")
            states = {wanted: states[wanted]}
        if not states:
            raise ModelNotFound(f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in sorted(states, reverse=True):
            state, code, message = states[version]
            item = response.model_version_status.add(version=version, state=state)
            item.status.error_code = code
            item.status.error_message = message
        return response

    async def HandleReloadConfigRequest(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        """Not offered: this server polls its model config file (or directory) instead."""
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "the bundled model server polls its model config file; write the file instead",
        )
