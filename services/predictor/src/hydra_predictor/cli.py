"""``hydra predictor``: a predictor replica."""

from __future__ import annotations

import asyncio

import typer

from hydra_common.plugins import ServiceDescriptor
from hydra_predictor.settings import PredictorSettings


def register(app: typer.Typer) -> None:
    """Add the ``predictor`` command to the ``hydra`` CLI."""

    @app.command("predictor")
    def predictor() -> None:
        """Take orders from the balancer, predict with the model server, report to the keeper."""
        from hydra_predictor.service import main

        asyncio.run(main())


SERVICE = ServiceDescriptor(
    name="predictor",
    title="predictor",
    settings=PredictorSettings,
    register_cli=register,
    module="hydra_predictor",
    metrics_port=9103,
    status_probe=True,
    order=40,
    stop_order=10,
    image_command=("predictor",),
)
