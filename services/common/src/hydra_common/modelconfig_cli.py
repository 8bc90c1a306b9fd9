"""``hydra model-config``: TF Serving's model config file, written from the database.

The shared library's own entry in the service registry: ``hydra up`` writes the file once
before anything starts (so the model server loads exactly the versions the database names
from its first scan), then runs ``hydra model-config watch`` first among the services.
"""

from __future__ import annotations

import asyncio

import typer

from hydra_common.plugins import ServiceDescriptor
from hydra_common.settings import HydraSettings

model_config_app = typer.Typer(
    help="TF Serving's model config file, written from the database.", no_args_is_help=True
)


@model_config_app.command("write")
def model_config_write() -> None:
    """Write HYDRA_MODEL_CONFIG_FILE once (only if its content changes)."""
    from hydra_common.logs import setup_logging
    from hydra_common.modelconfig import ModelConfigWriter

    settings = HydraSettings()
    setup_logging("modelconfig", settings.log_level, settings.log_format)

    async def run() -> bool:
        writer = ModelConfigWriter(settings)
        try:
            return await writer.write_once()
        finally:
            await writer.close()

    written = asyncio.run(run())
    typer.echo(f"{settings.model_config_path} {'written' if written else 'unchanged'}")


@model_config_app.command("watch")
def model_config_watch() -> None:
    """Keep HYDRA_MODEL_CONFIG_FILE in step with the database (every
    HYDRA_MODEL_CONFIG_POLL_SECONDS) and prune unlisted versions, until SIGTERM or SIGINT."""
    from hydra_common.runner import run_service

    settings = HydraSettings()
    stop = asyncio.Event()
    asyncio.run(run_service("modelconfig", settings, lambda: _Watcher(settings, stop), stop=stop))


class _Watcher:
    """``ModelConfigWriter.watch`` under ``run_service``: it watches in a task; a watch that
    fails ends the wait, and ``stop()`` raises its error (the process exits non-zero)."""

    def __init__(self, settings: HydraSettings, stop: asyncio.Event) -> None:
        from prometheus_client import REGISTRY

        from hydra_common.modelconfig import ModelConfigWriter

        self.writer = ModelConfigWriter(settings, REGISTRY)
        self._done = stop
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching."""
        self._task = asyncio.create_task(self.writer.watch(self._stop), name="model-config")
        self._task.add_done_callback(lambda _task: self._done.set())

    async def stop(self) -> None:
        """Stop watching, close the database connection; re-raise a failed watch's error."""
        self._stop.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            await self.writer.close()


def register(app: typer.Typer) -> None:
    """Add ``hydra model-config write|watch``."""
    app.add_typer(model_config_app, name="model-config")


SERVICE = ServiceDescriptor(
    name="modelconfig",
    title="model config writer",
    register_cli=register,
    command=("model-config", "watch"),
    prepare=("model-config", "write"),
    starts_first=True,
    metrics_port=9106,
    order=0,
    stop_order=60,
    # No image of its own: the chart runs `hydra model-config watch` in the API's image.
)
