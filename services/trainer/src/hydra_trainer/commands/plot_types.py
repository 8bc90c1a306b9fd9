"""``hydra plot-type ...``: create a plot type, change its valid labels, and show or set the
architecture and sampling it trains with by default.

The rules (label names, colours, labels in use) live in ``hydra_common.labels``, the allowed
architectures and samplings in ``hydra_common.training``; these commands parse, call them
and print.
"""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import labels as hall_labels
from hydra_common import training
from hydra_common.errors import InvalidInput
from hydra_trainer.commands.common import (
    audit,
    check_choice,
    fail_cleanly,
    in_session,
    load_settings,
)

plot_type_app = typer.Typer(help="Plot types and their valid labels.", no_args_is_help=True)


def parse_colors(values: list[str]) -> dict[str, str]:
    """``LABEL=#RRGGBB`` options as a mapping (InvalidInput for a malformed one)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, color = value.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--color wants LABEL=#RRGGBB, got {value!r}")
        out[name.strip()] = hall_labels.check_color(color)
    return out


@plot_type_app.command("add")
@fail_cleanly
def plot_type_add(
    name: str = typer.Argument(..., help="Plot type name (the file base name)."),
    labels: str = typer.Option(
        "Good,Bad,NoData",
        help="Comma-separated valid labels; labels the hall has not seen are created "
        "(see `hydra label add` for the name rules).",
    ),
    collect_percent: float = typer.Option(1.0, help="Unbiased sample kept for labelling, %."),
    detector: str = typer.Option("", help="Detector group (default: name up to the first _)."),
    file_type: str = typer.Option("png", help="File extension of the plot's images."),
    chunked: bool = typer.Option(False, help="Images carry a chunk number."),
    alarm: list[str] = typer.Option(
        [], "--alarm", help="A new label that raises alarms and gets heat maps (repeatable)."
    ),
    untrainable: list[str] = typer.Option(
        [], "--untrainable", help="A new label never trained on, like Ignore (repeatable)."
    ),
    color: list[str] = typer.Option(
        [], "--color", help="LABEL=#RRGGBB colour of a new label (repeatable; default: a free one)."
    ),
) -> None:
    """Create a plot type with its valid labels, creating the labels the hall has not seen.

    Example: hydra plot-type add CDC_occupancy --labels Good,Bad,Glitch --alarm Glitch
    --color Glitch=#17becf. --alarm, --untrainable and --color describe new labels only; an
    existing label is changed for every plot type with `hydra label set`."""
    from hydra_trainer.store import add_plot_type

    settings = load_settings()
    wanted = [lb.strip() for lb in labels.split(",") if lb.strip()]
    colors = parse_colors(color)

    async def work(session: AsyncSession) -> tuple[int, list[str], list[str]]:
        known = {c.id for c in await hall_labels.list_labels(session)}
        pt = await add_plot_type(
            session,
            name,
            wanted,
            detector=detector,
            collect_percent=collect_percent,
            file_type=file_type,
            chunked=chunked,
            alarm=alarm,
            untrainable=untrainable,
            colors=colors,
        )
        valid = await hall_labels.plot_type_labels(session, pt.id)
        return pt.id, [c.name for c in valid], [c.name for c in valid if c.id not in known]

    pid, names, created = in_session(settings, work)
    typer.echo(f"plot type {name} (id {pid}) with labels {', '.join(names)}")
    if created:
        typer.echo(f"new labels: {', '.join(created)}")


@plot_type_app.command("labels")
@fail_cleanly
def plot_type_labels_command(
    plot_type: str = typer.Argument(..., help="Plot type name."),
    add: list[str] = typer.Option([], "--add", help="A label to make valid (repeatable)."),
    remove: list[str] = typer.Option(
        [], "--remove", help="A label to drop (refused while images carry it; repeatable)."
    ),
) -> None:
    """Show a plot type's valid labels, or add and remove existing ones."""
    from hydra_trainer.store import get_plot_type

    settings = load_settings()

    async def work(session: AsyncSession) -> list[str]:
        pt = await get_plot_type(session, plot_type)
        current = [c.name for c in await hall_labels.plot_type_labels(session, pt.id)]
        if add or remove:
            drop = {hall_labels.key(n) for n in remove}
            names = [n for n in [*current, *add] if hall_labels.key(n) not in drop]
            change = await hall_labels.set_plot_type_labels(session, pt, names)
            after = {"added": change.added, "removed": change.removed}
            audit(session, "labels", "plot_type", pt.id, after, {"labels": current})
        return [c.name for c in await hall_labels.plot_type_labels(session, pt.id)]

    typer.echo(f"{plot_type}: {', '.join(in_session(settings, work))}")


@plot_type_app.command("defaults")
@fail_cleanly
def plot_type_defaults_command(
    plot_type: str = typer.Argument(..., help="Plot type name."),
    arch: str | None = typer.Option(
        None, help=f"Default architecture ({', '.join(training.ARCHITECTURES)})."
    ),
    sampling: str | None = typer.Option(
        None, help=f"Default sampling ({', '.join(training.SAMPLING_METHODS)})."
    ),
    clear: bool = typer.Option(False, help="Back to Hydra's defaults."),
) -> None:
    """Show or set the architecture and sampling a plot type trains with by default."""
    from hydra_trainer.store import get_plot_type

    check_choice(arch, training.ARCHITECTURES, "architecture")
    check_choice(sampling, training.SAMPLING_METHODS, "sampling")
    settings = load_settings()

    async def work(session: AsyncSession) -> tuple[str, str]:
        pt = await get_plot_type(session, plot_type)
        before = {"architecture": pt.default_architecture, "sampling": pt.default_sampling}
        if clear:
            pt.default_architecture = pt.default_sampling = None
        pt.default_architecture = arch or pt.default_architecture
        pt.default_sampling = sampling or pt.default_sampling
        after = {"architecture": pt.default_architecture, "sampling": pt.default_sampling}
        if after != before:
            audit(
                session,
                "update",
                "plot_type",
                pt.id,
                {f"default_{k}": v for k, v in after.items()},
                {f"default_{k}": v for k, v in before.items()},
            )
        return training.resolve_defaults(None, None, pt.default_architecture, pt.default_sampling)

    used_arch, used_sampling = in_session(settings, work)
    typer.echo(f"{plot_type} trains with {used_arch}, {used_sampling} sampling by default")


def register(app: typer.Typer) -> None:
    """Add ``hydra plot-type`` and its commands."""
    app.add_typer(plot_type_app, name="plot-type")
