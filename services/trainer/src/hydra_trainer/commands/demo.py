"""``hydra simulate``, ``hydra bootstrap-demo`` and ``hydra demo``: simulated monitoring
plots, the demo hall's models, and the demo itself.

``hydra_trainer.demo`` runs the demo's stack; it imports the launcher, which reads the
service registry, so it is imported only when ``hydra_trainer.cli`` registers this group.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from hydra_trainer.commands.common import fail_cleanly, load_settings, quiet_tensorflow
from hydra_trainer.demo import demo


@fail_cleanly
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


@fail_cleanly
def bootstrap_demo_command(
    per_label: int = typer.Option(40, help="Simulated images per label and plot type."),
    epochs: int = typer.Option(10, help="Most epochs per model."),
    force: bool = typer.Option(False, help="Train again where a model is already active."),
) -> None:
    """Create the demo hall's plot types, simulate and import labelled images, train a
    ``small`` model per plot type and promote it."""
    quiet_tensorflow()
    from hydra_trainer.bootstrap import bootstrap_demo

    settings = load_settings()
    for line in asyncio.run(bootstrap_demo(settings, per_label, epochs, force)):
        typer.echo(line)


def demo_command(
    interval: float = typer.Option(10.0, help="Seconds between simulated batches."),
) -> None:
    """Set up a demo hall, train models if none exist, run everything with simulated data."""
    demo(interval)


def register(app: typer.Typer) -> None:
    """Add ``hydra simulate``, ``hydra bootstrap-demo`` and ``hydra demo``."""
    app.command("simulate")(simulate_command)
    app.command("bootstrap-demo")(bootstrap_demo_command)
    app.command("demo")(demo_command)
