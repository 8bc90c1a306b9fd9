"""gRPC server and client helpers shared by every service.

Servers bind a given port (0 in tests), serve ``grpc.health.v1`` and reflection, map domain
errors to status codes, and drain gracefully: health goes NOT_SERVING, then
``server.stop(grace)``. Clients reconnect with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hydra_common.errors import ErrorInterceptor

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # A restarted peer is dialled again within a second. gRPC's own reconnect backoff starts
    # at 1 s and grows to 120 s: after a 5 s restart a channel could sit in TRANSIENT_FAILURE
    # for seconds more, failing every new stream at once (the fault drill's slow recoveries).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
# The most a stream's reconnect loop waits between tries: a dial costs next to nothing, and a
# longer wait is time the pipeline stands still after its peer is back.
RECONNECT_CAP_SECONDS = 1.0
SERVER_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
]


@dataclass
class RunningServer:
    """A started gRPC server, the port it bound and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: Sequence[str]

    async def stop(self, grace: float) -> None:
        """Mark every service NOT_SERVING, then stop, letting open calls finish within grace."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    register: Sequence[Callable[[grpc.aio.Server], None]],
    service_names: Sequence[str],
    port: int = 0,
    host: str = "127.0.0.1",
) -> RunningServer:
    """Start a gRPC server with health and reflection; returns it with the bound port."""
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=SERVER_OPTIONS)
    for reg in register:
        reg(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc server started", extra={"port": bound, "services": ",".join(service_names)})
    return RunningServer(server, bound, health_servicer, service_names)


def channel(target: str) -> grpc.aio.Channel:
    """An insecure channel with Hydra's message limits and keepalive."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


class Backoff:
    """Capped exponential backoff with jitter, reset after a success."""

    def __init__(self, initial: float = 0.1, cap: float = RECONNECT_CAP_SECONDS) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    async def wait(self) -> None:
        """Sleep for the current delay, then double it (up to the cap)."""
        await asyncio.sleep(self.delay * (0.5 + random.random() / 2))
        self.delay = min(self.cap, self.delay * 2)

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.delay = self.initial


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM or SIGINT (through the loop, so shutdown is awaited)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def describe_rpc_error(exc: BaseException) -> str:
    """A short description of a gRPC error for logs."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return repr(exc)


def ignore(*_: Any) -> None:
    """A no-op callback."""
