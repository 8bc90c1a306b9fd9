"""The balancer's ``hydra`` command."""

from __future__ import annotations

import asyncio

import typer

from hydra_balancer.settings import BalancerSettings
from hydra_common.plugins import Listener, ServiceDescriptor


def register(app: typer.Typer) -> None:
    """Add ``hydra balancer`` to the command line."""

    @app.command("balancer")
    def balancer() -> None:
        """Run the balancer: queue orders from feeders, hand them to predictors by credits."""
        from hydra_balancer.service import main
        from hydra_balancer.settings import BalancerSettings

        asyncio.run(main(BalancerSettings()))


SERVICE = ServiceDescriptor(
    name="balancer",
    title="balancer",
    settings=BalancerSettings,
    register_cli=register,
    module="hydra_balancer",
    listener=Listener(
        "balancer_port", "balancer_host", "balancer gRPC", address_setting="balancer_address"
    ),
    metrics_port=9102,
    status_probe=True,
    order=30,
    stop_order=20,
    image_command=("balancer",),
)
