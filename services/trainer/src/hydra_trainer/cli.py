"""The trainer's ``hydra`` commands: plot types, import, train, promote, rollback, models,
simulate and bootstrap-demo.

TensorFlow is imported only by the commands that need it, so ``hydra plot-type add`` and
``hydra simulate`` start in a moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.errors import HydraError
from hydra_common.logs import setup_logging
from hydra_common.plugins import ServiceDescriptor
from hydra_trainer.settings import TrainerSettings

T = TypeVar("T")
console = Console(stderr=False)
plot_type_app = typer.Typer(help="Plot types and their valid labels.", no_args_is_help=True)


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (HydraError, ValueError, FileExistsError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _settings() -> TrainerSettings:
    settings = TrainerSettings()
    setup_logging("trainer", settings.log_level, settings.log_format)
    return settings


async def _with_session(
    settings: TrainerSettings, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    from hydra_common.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings.db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # SavedModel export logs every assets folder at INFO; keep the command's output readable.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


# --- plot types and import -------------------------------------------------------------


@plot_type_app.command("add")
@_fail_cleanly
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
    from hydra_trainer.label_cli import parse_colors
    from hydra_trainer.store import add_plot_type

    settings = _settings()
    wanted = [lb.strip() for lb in labels.split(",") if lb.strip()]
    colors = parse_colors(color)

    async def work(session: AsyncSession) -> tuple[int, list[str], list[str]]:
        from hydra_common.labels import list_labels, plot_type_labels

        known = {c.id for c in await list_labels(session)}
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
        valid = await plot_type_labels(session, pt.id)
        return pt.id, [c.name for c in valid], [c.name for c in valid if c.id not in known]

    pid, names, created = asyncio.run(_with_session(settings, work))
    typer.echo(f"plot type {name} (id {pid}) with labels {', '.join(names)}")
    if created:
        typer.echo(f"new labels: {', '.join(created)}")


@_fail_cleanly
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

    settings = _settings()
    if manifest is not None:
        pairs = read_manifest(manifest)
    elif directory is not None:
        pairs = scan_tree(directory)
    else:
        raise ValueError("give a directory or --manifest")
    if not pairs:
        raise ValueError(f"no images found in {manifest or directory}")
    result = asyncio.run(
        _with_session(
            settings,
            lambda session: import_images(
                session, pairs, plot_type, settings.storage_root, skip_bad=skip_bad
            ),
        )
    )
    for problem in result.skipped:
        typer.echo(f"skipped: {problem}", err=True)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.imported.items()))
    typer.echo(f"imported {result.total} images into {plot_type}: {counts}")


# --- training and the model life cycle -------------------------------------------------


@_fail_cleanly
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
    _quiet_tensorflow()
    settings = _settings()
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
        _promote(settings, outcome.model_id)
    typer.echo(f"model id: {outcome.model_id}")


def _train_with_progress(
    settings: TrainerSettings, plot_type: str, options: Any, run_id: int | None
) -> Any:
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


def _print_outcome(outcome: Any) -> None:
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


def _promote(settings: TrainerSettings, model_id: int) -> None:
    import getpass

    from hydra_common.lifecycle import promote

    async def work(session: AsyncSession) -> str:
        model = await promote(session, model_id, settings.trainer_user or getpass.getuser())
        return f"model {model.id} ({model.name} v{model.version}) is active"

    typer.echo(asyncio.run(_with_session(settings, work)))


@_fail_cleanly
def promote_command(model_id: int = typer.Argument(..., help="Model id to activate.")) -> None:
    """Make a trained (or retired) model its plot type's active model; the previous one
    retires."""
    _promote(_settings(), model_id)


@_fail_cleanly
def rollback_command(plot_type: str = typer.Argument(..., help="Plot type.")) -> None:
    """Serve the plot type's previously active model again (the current model's parent if
    it served before, else the retired model promoted most recently)."""
    import getpass

    from hydra_common.lifecycle import rollback

    settings = _settings()

    async def work(session: AsyncSession) -> str:
        model = await rollback(session, plot_type, settings.trainer_user or getpass.getuser())
        return f"rolled back {plot_type}: model {model.id} ({model.name} v{model.version}) active"

    typer.echo(asyncio.run(_with_session(settings, work)))


@_fail_cleanly
def models_command(
    plot_type: str | None = typer.Argument(None, help="Only this plot type's models."),
) -> None:
    """List models with status, architecture and their test-split figures.

    Accuracy and F1 of each alarm-free label come from the test images, which neither the
    model nor its thresholds saw; ``*`` marks figures from too few test images."""
    from hydra_trainer.registry import list_models

    settings = _settings()
    rows = asyncio.run(_with_session(settings, lambda session: list_models(session, plot_type)))
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


# --- simulation and the demo ---------------------------------------------------------------


@_fail_cleanly
def simulate_command(
    out: Path = typer.Option(..., "--out", help="Output folder (the hall's monitoring output)."),
    hall: str = typer.Option("demo", help="demo, hallb, halld or epic."),
    plot_type: list[str] = typer.Option([], help="Only these plot types (repeatable)."),
    rate: float | None = typer.Option(None, help="Images per second (sets the interval)."),
    interval: float = typer.Option(5.0, help="Seconds between batches (one image per type)."),
    runs: int | None = typer.Option(None, help="Stop after this many runs."),
    chunks_per_run: int = typer.Option(1, help="Chunks per run (>1 adds _NNNN to names)."),
    bad_fraction: float = typer.Option(0.1, help="Fraction of images with a problem."),
    count: int | None = typer.Option(None, help="Stop after this many images."),
    once: bool = typer.Option(False, help="Write one batch and stop."),
    start_run: int = typer.Option(5000, help="First run number."),
    seed: int | None = typer.Option(None, help="Random seed (default: random)."),
    truth: bool = typer.Option(
        False,
        help="Write <image>.truth.json sidecars (off by default: a feeder watching OUT "
        "would log every sidecar as an unknown plot type).",
    ),
    mode: str = typer.Option(
        "normal",
        help="normal (plain problems) or hard (subtle problems: a few dead channels, a 5 % "
        "gain shift, a slightly widened or faint second peak; fewer entries, more noise).",
    ),
) -> None:
    """Write simulated monitoring plots in the hall's naming convention."""
    from hydra_trainer.catalog import hall_catalog
    from hydra_trainer.simulate import SimulationConfig, run_simulation

    if mode not in ("normal", "hard"):
        raise ValueError(f"unknown --mode {mode!r} (normal or hard)")
    specs = hall_catalog(hall)
    if plot_type:
        unknown = set(plot_type) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"unknown plot types for hall {hall}: {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in plot_type]
    if rate is not None:
        if rate <= 0:
            raise ValueError("--rate must be positive")
        interval = len(specs) / rate
    cfg = SimulationConfig(
        out_dir=out,
        plot_types=specs,
        bad_fraction=bad_fraction,
        interval=interval,
        runs=runs,
        chunks_per_run=max(chunks_per_run, 1),
        count=count,
        once=once,
        start_run=start_run,
        seed=seed,
        truth=truth,
        hard=mode == "hard",
    )
    try:
        written = run_simulation(cfg)
    except KeyboardInterrupt:
        typer.echo("stopped")
        return
    typer.echo(f"wrote {written} images under {out}")


@_fail_cleanly
def bootstrap_demo_command(
    per_label: int = typer.Option(40, help="Simulated images per label and plot type."),
    epochs: int = typer.Option(10, help="Most epochs per model."),
    force: bool = typer.Option(False, help="Train again where a model is already active."),
) -> None:
    """Create the demo hall's plot types, simulate and import labelled images, train a
    ``small`` model per plot type and promote it."""
    _quiet_tensorflow()
    from hydra_trainer.bootstrap import bootstrap_demo

    settings = _settings()
    for line in asyncio.run(bootstrap_demo(settings, per_label, epochs, force)):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to the ``hydra`` application."""
    app.add_typer(plot_type_app, name="plot-type")
    from hydra_trainer import label_cli  # here: label_cli imports this module

    label_cli.register(app, plot_type_app)
    app.command("import")(import_command)
    app.command("train")(train_command)
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)
    app.command("models")(models_command)
    app.command("simulate")(simulate_command)
    app.command("bootstrap-demo")(bootstrap_demo_command)
    from hydra_trainer import demo  # here: demo imports the launcher, which reads the registry

    demo.register(app)


SERVICE = ServiceDescriptor(
    name="trainer",
    title="trainer",
    settings=TrainerSettings,
    register_cli=register,  # not a process under ``hydra up``: a command and a Job
    order=70,
    stop_order=70,
    image_command=("train",),
)
