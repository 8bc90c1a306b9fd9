"""The ``hydra keeper`` command."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add ``hydra keeper`` to the ``hydra`` command line."""

    @app.command("keeper")
    def keeper(
        port: int | None = typer.Option(None, help="gRPC port (default: HYDRA_KEEPER_PORT)."),
        metrics_port: int | None = typer.Option(
            None, help="Prometheus port (default: HYDRA_METRICS_PORT)."
        ),
    ) -> None:
        """Record predictors' reports: thresholds, run history, kept images, alarms."""
        from hydra_keeper.service import main
        from hydra_keeper.settings import KeeperSettings

        settings = KeeperSettings()
        if port is not None:
            settings.keeper_port = port
        if metrics_port is not None:
            settings.metrics_port = metrics_port
        asyncio.run(main(settings))
