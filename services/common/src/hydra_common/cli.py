"""The ``hydra`` command line.

``db`` and ``up`` live here; every installed service package contributes its own commands
through its entry in the service registry (``hydra_common.plugins``, the ``hydra.services``
entry points), the shared library's ``model-config`` among them. A package that is not
installed (the feeder's image carries no trainer) simply contributes nothing.
"""

from __future__ import annotations

import asyncio

import typer

from hydra_common.settings import HydraSettings

app = typer.Typer(
    help="Hydra: AI data-quality monitoring for an experimental hall.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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


def _register_services() -> None:
    from hydra_common import launcher, plugins

    for descriptor in plugins.services().values():
        if descriptor.register_cli is not None:
            descriptor.register_cli(app)
    launcher.register(app)


def main() -> None:
    """Entry point of the ``hydra`` script."""
    _register_services()
    app()
