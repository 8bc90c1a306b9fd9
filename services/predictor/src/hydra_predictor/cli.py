"""``hydra predictor``: a predictor replica."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add the ``predictor`` command to the ``hydra`` CLI."""

    @app.command("predictor")
    def predictor() -> None:
        """Take orders from the balancer, predict with the model server, report to the keeper."""
        from hydra_predictor.service import main

        asyncio.run(main())
