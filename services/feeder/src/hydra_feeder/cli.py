"""The feeder's ``hydra`` command."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add ``hydra feeder`` to the command line."""

    @app.command("feeder")
    def feeder() -> None:
        """Run the feeder: watch the input directory and send valid plots to the balancer."""
        from hydra_feeder.service import main
        from hydra_feeder.settings import FeederSettings

        asyncio.run(main(FeederSettings()))
