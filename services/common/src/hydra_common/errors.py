"""Domain errors, mapped once to gRPC status (here) and once to HTTP (in the API)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

log = logging.getLogger(__name__)


class HydraError(Exception):
    """Base of every error Hydra reports to a caller."""

    grpc_code = grpc.StatusCode.INTERNAL
    http_status = 500


class InvalidInput(HydraError):
    """The request or the data in it is malformed."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 422


class NotFound(HydraError):
    """The thing asked for does not exist."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class ModelNotFound(NotFound):
    """No such model (name or version) on the model server."""


class ModelNotReady(HydraError):
    """The model exists but cannot serve yet."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class Conflict(HydraError):
    """The change conflicts with the current state."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409


class PermissionDenied(HydraError):
    """The caller may not do this."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class Unauthenticated(HydraError):
    """The caller is not logged in."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class Overloaded(HydraError):
    """The service is at its bound; try again later."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 503


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps HydraError to its gRPC status; logs anything else with its traceback."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method

        # The status is set and the handler returns, rather than ``context.abort()``: the
        # AbortError it raises, and an abort inside the except block, leave the request (40 MB
        # for a big image) in reference cycles that only the garbage collector frees, much
        # later; refused big requests grew the model server by 0.8 GB.
        def wrap_unary(fn: Any) -> Any:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    return await fn(request, context)
                except HydraError as exc:
                    status = exc.grpc_code, str(exc)
                except (grpc.aio.AbortError, grpc.aio.UsageError):
                    raise
                except Exception:
                    log.exception("unhandled error", extra={"method": method})
                    status = grpc.StatusCode.INTERNAL, "internal error"
                _fail(context, *status)
                return None

            return wrapped

        def wrap_stream(fn: Any) -> Any:
            async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    async for item in fn(request, context):
                        yield item
                    return
                except HydraError as exc:
                    status = exc.grpc_code, str(exc)
                except (grpc.aio.AbortError, grpc.aio.UsageError):
                    raise
                except Exception:
                    log.exception("unhandled error", extra={"method": method})
                    status = grpc.StatusCode.INTERNAL, "internal error"
                _fail(context, *status)

            return wrapped

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap_unary(handler.stream_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap_stream(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                wrap_stream(handler.stream_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler


def _fail(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End the call with ``code`` (gRPC sends no response message with a non-OK status)."""
    context.set_code(code)
    context.set_details(details)
