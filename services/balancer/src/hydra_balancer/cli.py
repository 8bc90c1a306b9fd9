"""The balancer's ``hydra`` command."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add ``hydra balancer`` to the command line."""

    @app.command("balancer")
    def balancer() -> None:
        """Run the balancer: queue orders from feeders, hand them to predictors by credits."""
        from hydra_balancer.service import main
        from hydra_balancer.settings import BalancerSettings

        asyncio.run(main(BalancerSettings()))
