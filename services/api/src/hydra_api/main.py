"""The FastAPI application: routers, error mapping, metrics, event stream and front end."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hydra_api import sso
from hydra_api.deps import AppState
from hydra_api.domain import users as user_rows
from hydra_api.domain.runtime import load_runtime_items_by_ids
from hydra_api.events import RuntimeBroadcaster
from hydra_api.inputs import BodyLimit, validation_error
from hydra_api.metrics import ApiMetrics, MetricsMiddleware
from hydra_api.models import ERROR_RESPONSES
from hydra_api.probes import StatusProbe, parse_targets
from hydra_api.routes import (
    alarms,
    auth,
    classifications,
    drift,
    files,
    health,
    labels,
    masks,
    models,
    monitoring,
    news,
    plot_types,
    runtime,
    shadow,
    training,
    users,
)
from hydra_api.security import LoginRateLimiter, SessionSigner
from hydra_api.settings import ApiSettings
from hydra_api.training import TrainingLauncher
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.errors import HydraError
from hydra_common.logs import get_logger
from hydra_common.runner import run_service

log = get_logger(__name__)
PACKAGE_STATIC = Path(__file__).parent / "static"

NOT_BUILT = """<!doctype html><html><head><title>Hydra</title></head><body>
<h1>Hydra API</h1><p>The front end is not built. Build it with <code>make frontend</code>
(or <code>npm run build</code> in <code>frontend/</code>); the API is at
<a href="/docs">/docs</a>.</p></body></html>"""


def operation_id(route: APIRoute) -> str:
    """``<tag>-<name>``, so the generated TypeScript client gets clean method names."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


async def bootstrap_admin(state: AppState) -> None:
    """Create the user ``admin`` from HYDRA_ADMIN_PASSWORD when no admin exists."""
    if state.settings.admin_password:
        async with state.sessionmaker() as session:
            await user_rows.bootstrap_admin(session, state.settings.admin_password)


def _lifespan(state: AppState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bootstrap_admin(state)
        broadcaster = RuntimeBroadcaster(
            state.sessionmaker,
            functools.partial(
                load_runtime_items_by_ids, stale_minutes=state.settings.stale_minutes
            ),
            state.metrics,
            state.settings.sse_poll_seconds,
            state.settings.keeper_address,
        )
        launcher = TrainingLauncher(state.settings, state.sessionmaker)
        state.broadcaster, state.launcher = broadcaster, launcher
        broadcaster.start()
        await launcher.start()
        try:
            yield
        finally:
            await broadcaster.stop()
            await launcher.stop()
            await state.engine.dispose()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    async def hydra_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HydraError)
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    app.add_exception_handler(HydraError, hydra_error)
    app.add_exception_handler(RequestValidationError, validation_error)


# The page's own scripts and styles only; images from the API (and data: URLs the heat-map
# overlay draws); no framing. /docs loads Swagger UI from a CDN, so it gets no CSP.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
NO_CSP = ("/docs", "/redoc")


class SecurityHeaders:
    """ASGI middleware: CSP, nosniff, referrer policy and no framing on every answer; HSTS
    when the browser came over HTTPS."""

    def __init__(self, app: ASGIApp, trusted_proxies: str) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]
        if not str(scope.get("path", "")).startswith(NO_CSP):
            extra.append((b"content-security-policy", CSP.encode()))
        if sso.came_over_https(Request(scope), self.trusted_proxies):
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class CatchAll:
    """ASGI middleware: an unexpected error is logged once, with its traceback, and answered
    as a JSON 500; the connection stays usable (nothing is re-raised to the server)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            log.error(
                "unhandled error",
                exc_info=exc,
                extra={"method": scope.get("method"), "path": str(scope.get("path"))[:200]},
            )
            if started:
                return  # the answer is under way: nothing better to send
            await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)


def _add_frontend(app: FastAPI, static_dir: Path) -> None:
    """Serve the built front end, with index.html for the app's own paths (SPA fallback)."""
    if not (static_dir / "index.html").is_file():

        @app.get("/", include_in_schema=False)
        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT)

        return
    root = static_dir.resolve()
    if (root / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=root / "assets"), name="assets")

    @app.get("/{full_path:path}", include_in_schema=False)
    async def frontend(full_path: str) -> Response:
        if full_path == "api" or full_path.startswith("api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if full_path and "\x00" not in full_path:  # a NUL byte made resolve() raise (500)
            candidate = (root / full_path).resolve()
            with contextlib.suppress(OSError):  # e.g. a name too long for the file system
                if candidate.is_relative_to(root) and candidate.is_file():
                    return FileResponse(candidate)
        return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


def create_app(
    settings: ApiSettings | None = None, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The Hydra API application for the given settings (own metrics registry in tests)."""
    settings = settings or ApiSettings()
    registry = registry or CollectorRegistry()
    engine = make_engine(settings.db_url)
    state = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        signer=SessionSigner(settings.secret_key),
        limiter=LoginRateLimiter(settings.login_failures_per_minute),
        metrics=ApiMetrics(registry),
        probe=StatusProbe(parse_targets(settings.status_targets), settings.status_probe_timeout),
    )
    app = FastAPI(
        title="Hydra",
        summary="AI data-quality monitoring for an experimental hall.",
        version="0.1.0",
        lifespan=_lifespan(state),
        generate_unique_id_function=operation_id,
    )
    app.state.hydra = state
    _add_error_handlers(app)
    for module in (
        health,
        runtime,
        files,
        auth,
        plot_types,
        classifications,
        labels,
        models,
        training,
        monitoring,
        news,
        users,
        alarms,
        drift,
        shadow,
        masks,
    ):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(models.reports_router, responses=ERROR_RESPONSES)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    _add_frontend(app, Path(settings.static_dir) if settings.static_dir else PACKAGE_STATIC)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, trusted_proxies=settings.trusted_proxies)
    app.add_middleware(CatchAll)  # outermost of Hydra's: sees what everything else raised
    return app


# How often uvicorn's main loop wakes: the resolution of its Date header (whole seconds).
TICK_SECONDS = 1.0


class _Server(uvicorn.Server):
    """Uvicorn, ending the open event streams as soon as a stop signal arrives: they never
    end by themselves, so they would otherwise hold the shutdown for the whole grace period.

    Its main loop wakes once a second instead of uvicorn's ten times (an idle API's largest
    steady CPU cost), and at once when asked to exit: ``should_exit`` set (by a signal, by
    ``_ApiServer.stop``) wakes it, so a stop is not delayed by the longer tick."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        self._exit_requested = asyncio.Event()
        super().__init__(config)
        self._app = app

    @property
    def should_exit(self) -> bool:
        """Whether the server was asked to exit (uvicorn's flag, which also wakes the loop)."""
        return self._exit_requested.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit_requested.set()
        else:
            self._exit_requested.clear()

    async def main_loop(self) -> None:
        """Uvicorn's loop (``on_tick``: the Date header, the exit checks), a tick a second;
        every tick refreshes the Date header, as uvicorn's every tenth tick does."""
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await self._exit_requested.wait()
            counter = (counter + 10) % 864000  # uvicorn refreshes the date when % 10 == 0
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state: AppState = self._app.state.hydra
        broadcaster = state.broadcaster
        if broadcaster is not None:
            with contextlib.suppress(RuntimeError):  # no loop: nothing is streaming
                asyncio.get_running_loop().call_soon(broadcaster.close_streams)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """No-op: main() takes the stop signals through the event loop instead.

        Uvicorn's own capture raises the signal again after a graceful stop, so a clean
        SIGTERM shutdown would end the process with -SIGTERM instead of exit code 0.
        """
        yield


async def main(settings: ApiSettings) -> None:
    """Serve the API until SIGTERM/SIGINT (uvicorn drains open requests on the way out)."""
    stop = asyncio.Event()

    def build() -> _ApiServer:
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            # X-Forwarded-* are read by Hydra itself, only from HYDRA_TRUSTED_PROXIES
            # (deps.client_address, deps.is_https): uvicorn's rewrite of the peer address would
            # hide which proxy a request came through, and the SSO header depends on that.
            proxy_headers=False,
            timeout_graceful_shutdown=int(settings.grace_seconds),
        )
        return _ApiServer(_Server(config, app), stop)

    # The API serves /metrics on its own port: no second endpoint from run_service.
    await run_service(
        "api",
        settings.model_copy(update={"metrics_port": 0}),
        build,
        stop=stop,
        started=lambda api: {"port": settings.api_port},
    )


class _ApiServer:
    """Uvicorn under ``run_service``: it serves in a task; a stop signal reaches its
    ``handle_exit`` (a second SIGINT still forces the exit, as uvicorn decides) and ends the
    wait; ``stop()`` lets uvicorn drain open requests."""

    def __init__(self, server: _Server, stop: asyncio.Event) -> None:
        self.server = server
        self._stop = stop
        self._task: asyncio.Task[None] | None = None

    def _on_signal(self, sig: int) -> None:
        self.server.handle_exit(sig, None)
        self._stop.set()

    async def start(self) -> None:
        """Serve in a task; return once uvicorn listens (its start-up error, if any, raises)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._task = asyncio.create_task(self.server.serve(), name="api-uvicorn")
        while not self.server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the API stopped while starting")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Ask uvicorn to exit (if no signal did) and wait for its graceful shutdown."""
        self.server.should_exit = True
        if self._task is not None:
            await self._task
