"""``hydra label ...``, ``hydra plot-type labels`` and ``hydra plot-type defaults``: the
hall's own labels, and its training defaults per plot type.

The rules (names, colours, duplicates, labels in use) live in ``hydra_common.labels``, the
allowed architectures and samplings in ``hydra_common.training``; these commands parse,
call them and print.
"""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import labels as hall_labels
from hydra_common import training
from hydra_common.db.schema import AuditLog, Classification
from hydra_common.errors import InvalidInput
from hydra_trainer.cli import _fail_cleanly, _settings, _with_session, console

label_app = typer.Typer(
    help="The hall's labels: names, colours, alarm and trainable flags.", no_args_is_help=True
)
NAME_RULE = (
    "1 to 32 characters: a letter, then letters, digits, _ or -; unique ignoring case, _ and -"
)


def parse_colors(values: list[str]) -> dict[str, str]:
    """``LABEL=#RRGGBB`` options as a mapping (InvalidInput for a malformed one)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, color = value.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--color wants LABEL=#RRGGBB, got {value!r}")
        out[name.strip()] = hall_labels.check_color(color)
    return out


def _audit(
    session: AsyncSession,
    action: str,
    entity_id: object,
    after: dict[str, object],
    before: dict[str, object] | None = None,
) -> None:
    session.add(
        AuditLog(
            username="cli",
            action=action,
            entity="classification",
            entity_id=str(entity_id),
            before=before or {},
            after=after,
        )
    )


def _describe(c: Classification) -> str:
    flags = [f for f, on in (("alarm", c.alarm), ("untrainable", not c.trainable)) if on]
    return f"{c.name} {c.color}" + (f" ({', '.join(flags)})" if flags else "")


@label_app.command("list")
@_fail_cleanly
def label_list() -> None:
    """List every label with its colour and flags."""
    settings = _settings()
    rows = asyncio.run(_with_session(settings, hall_labels.list_labels))
    table = Table("id", "name", "colour", "alarm", "trainable", "description")
    for c in rows:
        alarm, trainable = "yes" if c.alarm else "", "yes" if c.trainable else "no"
        table.add_row(str(c.id), c.name, c.color, alarm, trainable, c.description)
    console.print(table)


@label_app.command("add")
@_fail_cleanly
def label_add(
    name: str = typer.Argument(..., help=f"Label name ({NAME_RULE})."),
    color: str | None = typer.Option(None, help="#RRGGBB (default: a colour no label has)."),
    alarm: bool = typer.Option(False, "--alarm/--no-alarm", help="Raises alarms, gets heat maps."),
    untrainable: bool = typer.Option(False, help="Never trained on (like Ignore)."),
    description: str = typer.Option("", help="What the label means (shown on the web page)."),
) -> None:
    """Add a label to the hall's set (then give it to plot types with `hydra plot-type labels`)."""
    settings = _settings()

    async def work(session: AsyncSession) -> Classification:
        label = await hall_labels.create_label(
            session,
            name,
            color=color,
            description=description,
            trainable=not untrainable,
            alarm=alarm,
        )
        after = {
            "name": label.name,
            "color": label.color,
            "alarm": alarm,
            "trainable": not untrainable,
        }
        _audit(session, "create", label.id, after)
        return label

    typer.echo(f"label {_describe(asyncio.run(_with_session(settings, work)))}")


@label_app.command("set")
@_fail_cleanly
def label_set(
    name: str = typer.Argument(..., help="Label name."),
    color: str | None = typer.Option(None, help="#RRGGBB."),
    alarm: bool | None = typer.Option(
        None, "--alarm/--no-alarm", help="Raises alarms, gets heat maps."
    ),
    trainable: bool | None = typer.Option(
        None, "--trainable/--untrainable", help="Trained on, or never (like Ignore)."
    ),
    description: str | None = typer.Option(None, help="What the label means."),
) -> None:
    """Change a label's colour, alarm flag, trainable flag or description (every plot type)."""
    settings = _settings()

    async def work(session: AsyncSession) -> Classification:
        label, before, after = await hall_labels.update_label(
            session, name, color=color, description=description, trainable=trainable, alarm=alarm
        )
        if not after:
            raise InvalidInput("nothing to change: give --color, --alarm, --trainable, ...")
        _audit(session, "update", label.id, after, before)
        return label

    typer.echo(f"label {_describe(asyncio.run(_with_session(settings, work)))}")


def plot_type_labels_command(
    plot_type: str = typer.Argument(..., help="Plot type name."),
    add: list[str] = typer.Option([], "--add", help="A label to make valid (repeatable)."),
    remove: list[str] = typer.Option(
        [], "--remove", help="A label to drop (refused while images carry it; repeatable)."
    ),
) -> None:
    """Show a plot type's valid labels, or add and remove existing ones."""
    from hydra_trainer.store import get_plot_type

    settings = _settings()

    async def work(session: AsyncSession) -> list[str]:
        pt = await get_plot_type(session, plot_type)
        current = [c.name for c in await hall_labels.plot_type_labels(session, pt.id)]
        if add or remove:
            drop = {hall_labels.key(n) for n in remove}
            names = [n for n in [*current, *add] if hall_labels.key(n) not in drop]
            change = await hall_labels.set_plot_type_labels(session, pt, names)
            session.add(
                AuditLog(
                    username="cli",
                    action="labels",
                    entity="plot_type",
                    entity_id=str(pt.id),
                    before={"labels": current},
                    after={"added": change.added, "removed": change.removed},
                )
            )
        return [c.name for c in await hall_labels.plot_type_labels(session, pt.id)]

    typer.echo(f"{plot_type}: {', '.join(asyncio.run(_with_session(settings, work)))}")


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

    if arch is not None and arch not in training.ARCHITECTURES:
        raise InvalidInput(f"unknown architecture {arch!r} ({', '.join(training.ARCHITECTURES)})")
    if sampling is not None and sampling not in training.SAMPLING_METHODS:
        raise InvalidInput(
            f"unknown sampling {sampling!r} ({', '.join(training.SAMPLING_METHODS)})"
        )
    settings = _settings()

    async def work(session: AsyncSession) -> tuple[str, str]:
        pt = await get_plot_type(session, plot_type)
        before = {"architecture": pt.default_architecture, "sampling": pt.default_sampling}
        if clear:
            pt.default_architecture = pt.default_sampling = None
        pt.default_architecture = arch or pt.default_architecture
        pt.default_sampling = sampling or pt.default_sampling
        after = {"architecture": pt.default_architecture, "sampling": pt.default_sampling}
        if after != before:
            session.add(
                AuditLog(
                    username="cli",
                    action="update",
                    entity="plot_type",
                    entity_id=str(pt.id),
                    before={f"default_{k}": v for k, v in before.items()},
                    after={f"default_{k}": v for k, v in after.items()},
                )
            )
        return training.resolve_defaults(None, None, pt.default_architecture, pt.default_sampling)

    used_arch, used_sampling = asyncio.run(_with_session(settings, work))
    typer.echo(f"{plot_type} trains with {used_arch}, {used_sampling} sampling by default")


def register(app: typer.Typer, plot_type_app: typer.Typer) -> None:
    """Add ``hydra label``, ``hydra plot-type labels`` and ``hydra plot-type defaults``."""
    app.add_typer(label_app, name="label")
    plot_type_app.command("labels")(_fail_cleanly(plot_type_labels_command))
    plot_type_app.command("defaults")(_fail_cleanly(plot_type_defaults_command))
