"""``hydra import`` and ``hydra train``: labelled images in, a new model version out.

TensorFlow is imported only when ``hydra train`` runs, so the other commands start in a
moment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from hydra_trainer.commands.common import (
    console,
    fail_cleanly,
    in_session,
    load_settings,
    quiet_tensorflow,
)
from hydra_trainer.commands.models import promote_model
from hydra_trainer.settings import TrainerSettings

if TYPE_CHECKING:
    from hydra_trainer.pipeline import TrainOutcome
    from hydra_trainer.train import TrainOptions


@fail_cleanly
def import_command(
    directory: Path = typer.Argument(
        None, help="Labelled tree DIR/<Label>/*.png (omit with --manifest)."
    ),
    plot_type: str = typer.Option(..., "--plot-type", help="Plot type the images belong to."),
    manifest: Path | None = typer.Option(None, help="CSV with path,label columns instead."),
    skip_bad: bool = typer.Option(False, help="Skip unreadable images and unknown labels."),
) -> None:
    """Import labelled images into storage and the database."""
    from hydra_trainer.importer import import_images, read_manifest, scan_tree

    settings = load_settings()
    if manifest is not None:
        pairs = read_manifest(manifest)
    elif directory is not None:
        pairs = scan_tree(directory)
    else:
        raise ValueError("give a directory or --manifest")
    if not pairs:
        raise ValueError(f"no images found in {manifest or directory}")
    result = in_session(
        settings,
        lambda session: import_images(
            session, pairs, plot_type, settings.storage_root, skip_bad=skip_bad
        ),
    )
    for problem in result.skipped:
        typer.echo(f"skipped: {problem}", err=True)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.imported.items()))
    typer.echo(f"imported {result.total} images into {plot_type}: {counts}")


@fail_cleanly
def train_command(
    plot_type: str = typer.Argument(..., help="Plot type to train."),
    arch: str | None = typer.Option(
        None,
        help="inceptionv3, inceptionv3-cbam, small or module:function "
        "(default: the plot type's, else inceptionv3).",
    ),
    sampling: str | None = typer.Option(
        None,
        help="normal, undersample or oversample (default: the plot type's, else undersample).",
    ),
    init: str | None = typer.Option(
        None,
        help="imagenet (Keras' weights from HYDRA_WEIGHTS_DIR or ~/.keras/models), random, "
        "or a weights file (default: imagenet for InceptionV3, random for small).",
    ),
    epochs: int | None = typer.Option(None, help="Most epochs (default HYDRA_TRAIN_EPOCHS)."),
    batch_size: int | None = typer.Option(None, help="Batch size (default 16)."),
    optimizer: str = typer.Option("sgd", help="sgd (Nesterov momentum) or adam."),
    learning_rate: float = typer.Option(0.01, help="Learning rate."),
    momentum: float = typer.Option(0.2, help="SGD momentum (Nesterov)."),
    patience: int = typer.Option(5, help="Early-stopping patience (epochs)."),
    min_delta: float = typer.Option(0.005, help="Early-stopping minimum improvement."),
    test_fraction: float | None = typer.Option(
        None, help="Share of each label held out for the test figures (0.15)."
    ),
    validation_fraction: float | None = typer.Option(
        None, help="Share of each label for early stopping and thresholds (0.10)."
    ),
    input_size: str | None = typer.Option(None, help="HxW input size (architecture default)."),
    seed: int | None = typer.Option(None, help="Random seed."),
    run_id: int | None = typer.Option(None, help="training_runs row to report progress to."),
    promote_after: bool = typer.Option(False, "--promote", help="Promote the model when done."),
) -> None:
    """Train, export and evaluate a new model version for PLOT_TYPE."""
    quiet_tensorflow()
    settings = load_settings()
    from hydra_trainer.train import TrainOptions

    height = width = None
    if input_size:
        h, _, w = input_size.lower().partition("x")
        height, width = int(h), int(w or h)
    options = TrainOptions(
        architecture=arch,
        sampling=sampling,
        init=init,
        epochs=epochs or settings.train_epochs,
        batch_size=batch_size or settings.train_batch_size,
        optimizer=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
        patience=patience,
        min_delta=min_delta,
        test_fraction=settings.test_fraction if test_fraction is None else test_fraction,
        validation_fraction=(
            settings.validation_fraction if validation_fraction is None else validation_fraction
        ),
        seed=settings.train_seed if seed is None else seed,
        input_height=height,
        input_width=width,
    )
    outcome = _train_with_progress(settings, plot_type, options, run_id)
    _print_outcome(outcome)
    if promote_after:
        promote_model(settings, outcome.model_id)
    typer.echo(f"model id: {outcome.model_id}")


def _train_with_progress(
    settings: TrainerSettings, plot_type: str, options: TrainOptions, run_id: int | None
) -> TrainOutcome:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hydra_trainer.pipeline import train_plot_type

    with Progress(
        TextColumn("[bold]{task.fields[plot_type]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=1.0, plot_type=plot_type)

        def report(fraction: float, message: str) -> None:
            bar.update(task, completed=fraction, description=message)

        return asyncio.run(
            train_plot_type(settings, plot_type, options, run_id=run_id, progress=report)
        )


def _print_outcome(outcome: TrainOutcome) -> None:
    ev = outcome.evaluation
    typer.echo(
        f"model {outcome.name} version {outcome.version} ({outcome.epochs_run} epochs) "
        f"at {outcome.location}"
    )
    typer.echo(f"classes: {outcome.class_counts}")
    if outcome.dropped:
        typer.echo(f"dropped classes (fewer than 2 images): {outcome.dropped}")
    metrics = ev.metrics()
    splits = Table("split", *ev.labels, title="images per split and label")
    for split, counts in metrics["split_counts"].items():
        splits.add_row(split, *(str(counts.get(lb, 0)) for lb in ev.labels))
    console.print(splits)
    typer.echo(
        f"test images (never used for training or thresholds): {metrics['evaluated_images']}, "
        f"accuracy {metrics['accuracy']:.3f}"
    )
    table = Table("true \\ predicted", *ev.labels, title="confusion matrix (test)")
    for label, row in zip(ev.labels, ev.confusion.tolist(), strict=True):
        table.add_row(label, *(str(v) for v in row))
    console.print(table)
    for t, c in zip(ev.thresholds, ev.choices, strict=True):
        note = "" if t.evaluated else " (no test image of this label)"
        typer.echo(
            f"threshold {t.label}: {t.threshold:.2f} ({c.method}, {c.validation_support} "
            f"validation images); on test F1 {t.f1:.3f} precision {t.precision:.3f} "
            f"recall {t.recall:.3f} n={t.support}{note}"
        )
    for line in ev.notes():
        typer.echo(f"note: {line}")


def register(app: typer.Typer) -> None:
    """Add ``hydra import`` and ``hydra train``."""
    app.command("import")(import_command)
    app.command("train")(train_command)
