"""The feeder's ``hydra`` command."""

from __future__ import annotations

import asyncio

import typer

from hydra_common.plugins import ServiceDescriptor
from hydra_feeder.settings import FeederSettings


def register(app: typer.Typer) -> None:
    """Add ``hydra feeder`` to the command line."""

    @app.command("feeder")
    def feeder() -> None:
        """Run the feeder: watch the input directory and send valid plots to the balancer."""
        from hydra_feeder.service import main
        from hydra_feeder.settings import FeederSettings

        asyncio.run(main(FeederSettings()))


SERVICE = ServiceDescriptor(
    name="feeder",
    title="feeder",
    settings=FeederSettings,
    register_cli=register,
    module="hydra_feeder",
    metrics_port=9101,
    status_probe=True,
    order=50,
    stop_order=0,  # first: nothing new enters while the rest drains
    image_command=("feeder",),
)
