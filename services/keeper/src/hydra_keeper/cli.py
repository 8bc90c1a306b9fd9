"""The ``hydra keeper`` and ``hydra prune`` commands."""

from __future__ import annotations

import asyncio

import typer

from hydra_common.plugins import Listener, ServiceDescriptor
from hydra_keeper.settings import KeeperSettings


async def prune(dry_run: bool) -> str:
    """One retention pass with the keeper's settings (``HYDRA_RETENTION_*``); its report."""
    from hydra_common.db.engine import make_engine
    from hydra_keeper.retention import Pruner, RetentionPolicy, describe
    from hydra_keeper.settings import KeeperSettings

    settings = KeeperSettings()
    engine = make_engine(settings.db_url)
    try:
        pruner = Pruner(engine, settings.storage_root, RetentionPolicy.from_settings(settings))
        result = await (pruner.dry_run() if dry_run else pruner.prune())
        return describe(result)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    """Add ``hydra keeper`` and ``hydra prune`` to the ``hydra`` command line."""

    @app.command("prune")
    def prune_command(
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Count what would be removed; remove nothing."
        ),
    ) -> None:
        """Delete run history, monitoring log, ledger rows and unlabelled kept images older
        than the retention settings (``HYDRA_RETENTION_*_DAYS``), as the keeper does hourly.
        Labelled images and those in a training set are never deleted."""
        typer.echo(asyncio.run(prune(dry_run)))

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


SERVICE = ServiceDescriptor(
    name="keeper",
    title="keeper",
    settings=KeeperSettings,
    register_cli=register,
    module="hydra_keeper",
    listener=Listener(
        "keeper_port", "keeper_host", "keeper gRPC", address_setting="keeper_address"
    ),
    metrics_port=9104,
    order=20,
    stop_order=30,
    image_command=("keeper",),
)
