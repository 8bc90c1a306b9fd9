"""``hydra label ...``: the hall's own labels, their colours and alarm and trainable flags.

The rules (names, colours, duplicates) live in ``hydra_common.labels``; these commands parse,
call them and print. A plot type's valid labels are ``hydra plot-type labels``.
"""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import labels as hall_labels
from hydra_common.db.schema import Classification
from hydra_common.errors import InvalidInput
from hydra_trainer.commands.common import audit, console, fail_cleanly, in_session, load_settings

label_app = typer.Typer(
    help="The hall's labels: names, colours, alarm and trainable flags.", no_args_is_help=True
)
NAME_RULE = (
    "1 to 32 characters: a letter, then letters, digits, _ or -; unique ignoring case, _ and -"
)


def _describe(c: Classification) -> str:
    flags = [f for f, on in (("alarm", c.alarm), ("untrainable", not c.trainable)) if on]
    return f"{c.name} {c.color}" + (f" ({', '.join(flags)})" if flags else "")


@label_app.command("list")
@fail_cleanly
def label_list() -> None:
    """List every label with its colour and flags."""
    settings = load_settings()
    rows = in_session(settings, hall_labels.list_labels)
    table = Table("id", "name", "colour", "alarm", "trainable", "description")
    for c in rows:
        alarm, trainable = "yes" if c.alarm else "", "yes" if c.trainable else "no"
        table.add_row(str(c.id), c.name, c.color, alarm, trainable, c.description)
    console.print(table)


@label_app.command("add")
@fail_cleanly
def label_add(
    name: str = typer.Argument(..., help=f"Label name ({NAME_RULE})."),
    color: str | None = typer.Option(None, help="#RRGGBB (default: a colour no label has)."),
    alarm: bool = typer.Option(False, "--alarm/--no-alarm", help="Raises alarms, gets heat maps."),
    untrainable: bool = typer.Option(False, help="Never trained on (like Ignore)."),
    description: str = typer.Option("", help="What the label means (shown on the web page)."),
) -> None:
    """Add a label to the hall's set (then give it to plot types with `hydra plot-type labels`)."""
    settings = load_settings()

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
        audit(session, "create", "classification", label.id, after)
        return label

    typer.echo(f"label {_describe(in_session(settings, work))}")


@label_app.command("set")
@fail_cleanly
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
    settings = load_settings()

    async def work(session: AsyncSession) -> Classification:
        label, before, after = await hall_labels.update_label(
            session, name, color=color, description=description, trainable=trainable, alarm=alarm
        )
        if not after:
            raise InvalidInput("nothing to change: give --color, --alarm, --trainable, ...")
        audit(session, "update", "classification", label.id, after, before)
        return label

    typer.echo(f"label {_describe(in_session(settings, work))}")


def register(app: typer.Typer) -> None:
    """Add ``hydra label`` and its commands."""
    app.add_typer(label_app, name="label")
