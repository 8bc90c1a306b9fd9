"""The ``hydra`` command line.

Common commands (``db``, ``model-config``, ``up``, ``demo``) live here; every service package
contributes its own commands through ``<package>.cli.register(app)``. A package that is not
installed (the feeder's image carries no trainer) simply contributes nothing.
"""

from __future__ import annotations

import asyncio
import importlib

import typer

from hydra_common.settings import HydraSettings

app = typer.Typer(
    help="Hydra: AI data-quality monitoring for an experimental hall.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
model_config_app = typer.Typer(
    help="TF Serving's model config file, written from the database.", no_args_is_help=True
)
app.add_typer(model_config_app, name="model-config")

SERVICE_CLIS = (
    "hydra_feeder.cli",
    "hydra_balancer.cli",
    "hydra_predictor.cli",
    "hydra_keeper.cli",
    "hydra_modelserver.cli",
    "hydra_api.cli",
    "hydra_trainer.cli",
    "hydra_common.launcher",
)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head"), wait: float = 60.0) -> None:
    """Wait for the database, then migrate it up to REVISION (default: head)."""
    from hydra_common.db.migrate import upgrade, wait_for_database

    url = HydraSettings().db_url
    asyncio.run(wait_for_database(url, wait))
    upgrade(url, revision)
    typer.echo(f"database at revision {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(...)) -> None:
    """Migrate the database down to REVISION ('base' removes every table)."""
    from hydra_common.db.migrate import downgrade

    downgrade(HydraSettings().db_url, revision)
    typer.echo(f"database at revision {revision}")


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
    from prometheus_client import REGISTRY

    from hydra_common.grpcserver import install_stop_signals
    from hydra_common.logs import setup_logging
    from hydra_common.metrics import serve_metrics
    from hydra_common.modelconfig import ModelConfigWriter

    settings = HydraSettings()
    setup_logging("modelconfig", settings.log_level, settings.log_format)

    async def run() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        writer = ModelConfigWriter(settings, REGISTRY)
        serve_metrics(REGISTRY, settings.metrics_port, settings.metrics_host)
        try:
            await writer.watch(stop)
        finally:
            await writer.close()

    asyncio.run(run())


def _register_services() -> None:
    for name in SERVICE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name.split(".")[0]):
                continue  # that service is not installed in this image
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def main() -> None:
    """Entry point of the ``hydra`` script."""
    _register_services()
    app()
