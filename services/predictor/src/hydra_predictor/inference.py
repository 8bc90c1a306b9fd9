"""Batches of orders through the model server: one Predict per batch, explain for alarms.

Orders are grouped per model (max ``HYDRA_MAX_BATCH`` images, max ``HYDRA_MAX_WAIT_MS``
wait) and sent as one ``serving_default`` call; the images the model calls an alarm label
(Bad) go once more through ``explain`` for their Grad-CAM heat map. Every order of a batch
ends as a report: OK, or ERROR with the reason when the model server fails.

When the plot type has a shadow model, the same images then go through it once; its
weights (or its error) and both calls' seconds per image ride in the report's ``shadow``
field. The shadow call never waits for the model server and never changes a report's
verdict: it fails alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from hydra.v1 import report_pb2
from hydra.v1.order_pb2 import InferenceOrder

from hydra_common.grpcserver import MAX_MESSAGE_BYTES, Backoff
from hydra_common.logs import get_logger
from hydra_predictor.catalog import ActiveModel
from hydra_predictor.metrics import PredictorMetrics
from hydra_predictor.settings import PredictorSettings
from hydra_predictor.tfs import (
    PREDICTION_SERVICE,
    float_array,
    predict_pb2,
    prediction_service_pb2_grpc,
    string_tensor,
)

log = get_logger(__name__)


SERVING_DEFAULT = "serving_default"
EXPLAIN = "explain"

# Round robin over every address the name resolves to (a headless Service's pods), and a
# few quick retries while a model-server pod restarts; Predict has no side effects.
_SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": PREDICTION_SERVICE}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}
# No client keepalive pings: TF Serving keeps gRPC's default server policy, which answers
# pings on an idle connection with GOAWAY ("too_many_pings").
MODEL_SERVER_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.service_config", json.dumps(_SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    # A restarted model server is tried again within a second (a connection attempt to it
    # costs next to nothing): with gRPC's 5 s the channel still failed fast for seconds after
    # the server was back, and batches waiting for it could time out into ERROR verdicts.
    ("grpc.max_reconnect_backoff_ms", 1000),
]


# A model server that is restarting answers UNAVAILABLE; one that has not loaded a just
# promoted version yet answers NOT_FOUND. Both pass; anything else is the order's error.
_WAIT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)


class ModelServerError(Exception):
    """A Predict call failed: any gRPC error, the deadline, or an output that makes no sense."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code  # the model server's status, when it answered with one


class ModelClient:
    """TF Serving's ``PredictionService`` client for Hydra's two signatures."""

    def __init__(
        self, address: str, timeout: float, metrics: PredictorMetrics, retry_seconds: float = 0.0
    ) -> None:
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.metrics = metrics
        self.channel = grpc.aio.insecure_channel(address, options=MODEL_SERVER_CHANNEL_OPTIONS)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    async def predict(
        self,
        model: ActiveModel,
        signature: str,
        images: Sequence[bytes],
        output: str,
        *,
        shadow: bool = False,
    ) -> np.ndarray:
        """Call ``signature`` on a batch of encoded images and return one float output.

        A ``shadow`` call does not wait for a model server that is not ready and stays out
        of the Predict metrics (a shadow model's failures must not page anyone)."""
        record = not shadow
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model.name
        request.model_spec.version.value = model.version
        request.model_spec.signature_name = signature
        request.inputs["image"].CopyFrom(string_tensor(images))
        request.output_filter.append(output)
        started = time.perf_counter()
        try:
            if shadow:
                response = await self.stub.Predict(request, timeout=self.timeout)
            else:
                response = await self._predict_waiting(request)
            if output not in response.outputs:
                raise ModelServerError(f"{signature} returned no '{output}' output")
            values = float_array(response.outputs[output])
        except grpc.aio.AioRpcError as exc:
            if record:
                self.metrics.model_server_errors.inc()
            raise ModelServerError(
                f"model server {exc.code().name}: {exc.details() or ''}".strip(), exc.code()
            ) from exc
        except (ModelServerError, ValueError) as exc:
            if record:
                self.metrics.model_server_errors.inc()
            raise ModelServerError(str(exc)) from exc
        finally:
            if record:
                self.metrics.predict_seconds.labels(signature).observe(
                    time.perf_counter() - started
                )
        if values.ndim < 1 or values.shape[0] != len(images):
            if record:
                self.metrics.model_server_errors.inc()
            raise ModelServerError(
                f"{signature} '{output}' has shape {list(values.shape)} for {len(images)} images"
            )
        return values

    async def _predict_waiting(self, request: Any) -> Any:
        """Predict; while the server is unreachable (restarting) or the version is not loaded
        yet, wait and try again up to ``retry_seconds``, so a restart costs time, not verdicts.
        """
        deadline = time.monotonic() + self.retry_seconds
        backoff = Backoff(0.2, 1.0)  # a restarted server is seen within a second
        while True:
            try:
                return await self.stub.Predict(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _WAIT_CODES or time.monotonic() >= deadline:
                    raise
                log.info(
                    "model server not ready, waiting",
                    extra={"model": request.model_spec.name, "code": exc.code().name},
                )
                await backoff.wait()

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()


def _report(
    order: InferenceOrder, model: ActiveModel, predictor_id: str, **fields: Any
) -> report_pb2.Report:
    return report_pb2.Report(
        order=order,
        model_id=model.model_id,
        model_name=model.name,
        model_version=model.version,
        predictor_id=predictor_id,
        **fields,
    )


def _shadow_result(
    model: ActiveModel, seconds: float, active_seconds: float, **fields: Any
) -> report_pb2.ShadowResult:
    return report_pb2.ShadowResult(
        model_id=model.model_id,
        model_name=model.name,
        model_version=model.version,
        seconds_per_image=seconds,
        active_seconds_per_image=active_seconds,
        **fields,
    )


def normalise(weights: np.ndarray) -> list[float]:
    """Weights scaled to sum 1 (softmax already does, up to rounding)."""
    clipped = np.clip(weights.astype(np.float64), 0.0, None)
    total = clipped.sum()
    scaled: list[float] = (clipped / total).tolist() if total > 0 else clipped.tolist()
    return scaled


def heat_map(values: np.ndarray) -> report_pb2.HeatMap:
    """A Grad-CAM map ``[h, w]`` as the report's row-major HeatMap, clipped to [0, 1]."""
    height, width = values.shape
    clipped = np.clip(np.nan_to_num(values), 0.0, 1.0)
    return report_pb2.HeatMap(height=height, width=width, values=clipped.ravel().tolist())


class BatchRunner:
    """Runs one batch of orders for one model and turns every order into a report."""

    def __init__(
        self, client: ModelClient, settings: PredictorSettings, metrics: PredictorMetrics
    ) -> None:
        self.client = client
        self.predictor_id = settings.predictor_id
        self.metrics = metrics

    async def run(
        self,
        model: ActiveModel,
        orders: list[InferenceOrder],
        shadow: ActiveModel | None = None,
    ) -> list[report_pb2.Report]:
        """Reports for the batch: OK with weights (and heat maps for alarms), or ERROR; with
        the ``shadow`` model's result on the same images when given."""
        start_ns = time.time_ns()
        for order in orders:
            order.stages.predict_start_ns = start_ns
        self.metrics.batch_size.observe(len(orders))
        started = time.perf_counter()
        try:
            weights = await self.client.predict(
                model, SERVING_DEFAULT, [o.image for o in orders], "weights"
            )
            active_seconds = (time.perf_counter() - started) / len(orders)
            if weights.shape != (len(orders), len(model.labels)):
                raise ModelServerError(
                    f"model {model.name}:{model.version} gave weights of shape "
                    f"{list(weights.shape)}; the database lists {len(model.labels)} labels"
                )
        except ModelServerError as exc:
            if exc.code == grpc.StatusCode.INVALID_ARGUMENT and len(orders) > 1:
                # One image the model cannot decode fails the whole call: halve the batch
                # until the bad ones are alone, so only they get an ERROR report.
                half = len(orders) // 2
                return await self.run(model, orders[:half], shadow) + await self.run(
                    model, orders[half:], shadow
                )
            end_ns = time.time_ns()
            log.warning(
                "predict failed",
                extra={
                    "model": model.name,
                    "version": model.version,
                    "orders": len(orders),
                    "error": str(exc)[:500],
                    "order_id": orders[0].order_id,
                },
            )
            for order in orders:
                order.stages.predict_end_ns = end_ns
            self.metrics.reports.labels("error").inc(len(orders))
            return [
                _report(
                    o,
                    model,
                    self.predictor_id,
                    status=report_pb2.REPORT_STATUS_ERROR,
                    error=str(exc),
                )
                for o in orders
            ]
        end_ns = time.time_ns()
        for order in orders:
            order.stages.predict_end_ns = end_ns
        heat_maps = await self._explain(model, orders, weights)
        reports = []
        for i, order in enumerate(orders):
            report = _report(
                order,
                model,
                self.predictor_id,
                status=report_pb2.REPORT_STATUS_OK,
                labels=model.labels,
                weights=normalise(weights[i]),
            )
            if i in heat_maps:
                report.heat_map.CopyFrom(heat_maps[i])
            reports.append(report)
        self.metrics.reports.labels("ok").inc(len(orders))
        if shadow is not None and shadow.model_id != model.model_id:
            await self._shadow(shadow, orders, reports, active_seconds)
        return reports

    async def _shadow(
        self,
        shadow: ActiveModel,
        orders: list[InferenceOrder],
        reports: list[report_pb2.Report],
        active_seconds: float,
    ) -> None:
        """Run the shadow model on the batch and attach its result to every report."""
        started = time.perf_counter()
        results: list[report_pb2.ShadowResult] = []
        try:
            weights = await self.client.predict(
                shadow, SERVING_DEFAULT, [o.image for o in orders], "weights", shadow=True
            )
            if weights.shape != (len(orders), len(shadow.labels)):
                raise ModelServerError(
                    f"shadow model {shadow.name}:{shadow.version} gave weights of shape "
                    f"{list(weights.shape)}; the database lists {len(shadow.labels)} labels"
                )
        except ModelServerError as exc:
            log.warning(
                "shadow predict failed; the verdicts stand",
                extra={
                    "model": shadow.name,
                    "version": shadow.version,
                    "error": str(exc)[:500],
                    "order_id": orders[0].order_id,
                },
            )
            seconds = (time.perf_counter() - started) / len(orders)
            results = [
                _shadow_result(
                    shadow,
                    seconds,
                    active_seconds,
                    status=report_pb2.REPORT_STATUS_ERROR,
                    error=str(exc)[:1000],
                )
                for _ in orders
            ]
            self.metrics.shadow_results.labels("error").inc(len(orders))
        else:
            seconds = (time.perf_counter() - started) / len(orders)
            results = [
                _shadow_result(
                    shadow,
                    seconds,
                    active_seconds,
                    status=report_pb2.REPORT_STATUS_OK,
                    labels=shadow.labels,
                    weights=normalise(weights[i]),
                )
                for i in range(len(orders))
            ]
            self.metrics.shadow_results.labels("ok").inc(len(orders))
        for report, result in zip(reports, results, strict=True):
            report.shadow.CopyFrom(result)

    async def _explain(
        self, model: ActiveModel, orders: list[InferenceOrder], weights: np.ndarray
    ) -> dict[int, report_pb2.HeatMap]:
        """Heat maps for the orders whose top label is an alarm label; none if explain fails."""
        alarms = [
            i for i in range(len(orders)) if int(np.argmax(weights[i])) in model.alarm_indices
        ]
        if not alarms:
            return {}
        try:
            maps = await self.client.predict(
                model, EXPLAIN, [orders[i].image for i in alarms], "heatmap"
            )
            if maps.ndim != 3:
                raise ModelServerError(f"heatmap has shape {list(maps.shape)}, expected 3 axes")
        except ModelServerError as exc:
            # The classification stands; the shift crew sees the verdict without the overlay.
            log.warning(
                "explain failed; reporting without heat maps",
                extra={
                    "model": model.name,
                    "version": model.version,
                    "error": str(exc)[:500],
                    "order_id": orders[alarms[0]].order_id,
                },
            )
            return {}
        end_ns = time.time_ns()
        for i in alarms:
            orders[i].stages.predict_end_ns = end_ns
        return {i: heat_map(maps[k]) for k, i in enumerate(alarms)}


@dataclass
class _OpenBatch:
    model: ActiveModel
    orders: list[InferenceOrder] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Batcher:
    """Groups orders per model; a batch goes when full or when its oldest order waited enough."""

    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        run: Callable[[ActiveModel, list[InferenceOrder]], Coroutine[Any, Any, None]],
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._run = run
        self._open: dict[int, _OpenBatch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, model: ActiveModel, order: InferenceOrder) -> None:
        """Queue an order for its model's next batch."""
        batch = self._open.get(model.model_id)
        if batch is None:
            batch = self._open[model.model_id] = _OpenBatch(model)
            batch.timer = asyncio.get_running_loop().call_later(
                self.max_wait, self._flush, model.model_id
            )
        batch.orders.append(order)
        if len(batch.orders) >= self.max_batch:
            self._flush(model.model_id)

    def _flush(self, model_id: int) -> None:
        batch = self._open.pop(model_id, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.create_task(self._run(batch.model, batch.orders))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def abandon(self) -> None:
        """Drop open batches and cancel running ones (shutdown after the grace period)."""
        for batch in self._open.values():
            if batch.timer is not None:
                batch.timer.cancel()
        self._open.clear()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Send what is open now and wait for every running batch."""
        for model_id in list(self._open):
            self._flush(model_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
