"""``hydra promote``, ``hydra rollback`` and ``hydra models``: the model life cycle.

Which model may serve, and what a rollback returns to, is ``hydra_common.lifecycle``'s rule,
shared with the web page; these commands only call it and say what happened.
"""

from __future__ import annotations

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import lifecycle
from hydra_trainer.commands.common import (
    acting_user,
    console,
    fail_cleanly,
    in_session,
    load_settings,
)
from hydra_trainer.settings import TrainerSettings


def promote_model(settings: TrainerSettings, model_id: int) -> None:
    """Activate MODEL_ID for its plot type and say so (``hydra promote``, ``train --promote``)."""

    async def work(session: AsyncSession) -> str:
        model = await lifecycle.promote(session, model_id, acting_user(settings))
        return f"model {model.id} ({model.name} v{model.version}) is active"

    typer.echo(in_session(settings, work))


@fail_cleanly
def promote_command(model_id: int = typer.Argument(..., help="Model id to activate.")) -> None:
    """Make a trained (or retired) model its plot type's active model; the previous one
    retires."""
    promote_model(load_settings(), model_id)


@fail_cleanly
def rollback_command(plot_type: str = typer.Argument(..., help="Plot type.")) -> None:
    """Serve the plot type's previously active model again (the current model's parent if
    it served before, else the retired model promoted most recently)."""
    settings = load_settings()

    async def work(session: AsyncSession) -> str:
        model = await lifecycle.rollback(session, plot_type, acting_user(settings))
        return f"rolled back {plot_type}: model {model.id} ({model.name} v{model.version}) active"

    typer.echo(in_session(settings, work))


@fail_cleanly
def models_command(
    plot_type: str | None = typer.Argument(None, help="Only this plot type's models."),
) -> None:
    """List models with status, architecture and their test-split figures.

    Accuracy and F1 of each alarm-free label come from the test images, which neither the
    model nor its thresholds saw; ``*`` marks figures from too few test images."""
    from hydra_trainer.registry import list_models

    settings = load_settings()
    rows = in_session(settings, lambda session: list_models(session, plot_type))
    table = Table("id", "plot type", "v", "architecture", "status", "test n", "accuracy")
    f1_lines = []
    for name, m in rows:
        metrics = m.metrics or {}
        acc = metrics.get("accuracy")
        mark = "*" if metrics.get("indicative") else ""
        table.add_row(
            str(m.id),
            name,
            str(m.version),
            m.architecture,
            m.status.value,
            str(metrics.get("evaluated_images", "")),
            f"{acc:.3f}{mark}" if isinstance(acc, float) else "",
        )
        f1 = {k: v for k, v in (metrics.get("f1") or {}).items() if isinstance(v, float | int)}
        if f1:
            per_label = ", ".join(f"{k} {v:.2f}" for k, v in f1.items())
            f1_lines.append(f"model {m.id} F1 on test: {per_label}")
    console.print(table)
    for line in f1_lines:
        typer.echo(line)
    if any((m.metrics or {}).get("indicative") for _, m in rows):
        typer.echo("* indicative: fewer than 20 test images for some label")


def register(app: typer.Typer) -> None:
    """Add ``hydra promote``, ``hydra rollback`` and ``hydra models``."""
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)
    app.command("models")(models_command)
