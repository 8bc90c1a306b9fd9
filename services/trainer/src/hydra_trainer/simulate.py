"""The hall simulator: writes monitoring plots like a hall's online monitoring does.

Live mode (``hydra simulate OUT``) writes one batch per interval, one image per plot type,
under ``OUT/RunPeriod-YYYY-MM/Run<N>/<plot_type>[_<chunk:04d>].png``; a run has
``chunks_per_run`` chunks (a chunk suffix only when there is more than one), then the run
number moves on. A fraction of the images carries an injected problem. Each image gets a
sidecar ``<image>.truth.json`` (label, defect, box) unless ``truth=False``.

Labelled mode (``write_labelled_set``) writes ``OUT/<Label>/*.png`` trees that
``hydra import`` reads, to bootstrap training.

``hard`` mode draws subtle problems (see ``hydra_trainer.plots``); a labelled set can also
carry label noise: a fraction of the images filed under a wrong label, as tired experts do.
Their sidecars keep the true label and say ``"noisy_label": true``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from hydra_trainer.catalog import PlotTypeSpec
from hydra_trainer.plots import Truth, make_plot

TRUTH_SUFFIX = ".truth.json"


@dataclass
class SimulationConfig:
    """How much to write, and how fast."""

    out_dir: Path
    plot_types: Sequence[PlotTypeSpec]
    bad_fraction: float = 0.1
    interval: float = 5.0  # seconds between batches
    runs: int | None = None  # stop after this many runs (None: no limit)
    chunks_per_run: int = 1
    count: int | None = None  # stop after this many images (None: no limit)
    once: bool = False
    start_run: int = 5000
    seed: int | None = None
    truth: bool = True
    hard: bool = False  # subtle problems, realistic occupancy and noise
    run_period: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m"))


def choose_label(spec: PlotTypeSpec, bad_fraction: float, rng: np.random.Generator) -> str:
    """Good most of the time; one of the plot type's other labels at ``bad_fraction``."""
    problems = [lb for lb in spec.labels if lb != "Good"]
    if not problems or rng.random() >= bad_fraction:
        return "Good" if "Good" in spec.labels else spec.labels[0]
    # Bad is the problem a simulated hall shows most; the others share the rest equally.
    weights = np.array([3.0 if lb == "Bad" else 1.0 for lb in problems])
    return str(rng.choice(problems, p=weights / weights.sum()))


def write_plot(
    path: Path, image: Image.Image, truth: Truth | None, extra: dict[str, object]
) -> None:
    """Write the PNG atomically (a complete file appears at once), then its truth sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    if truth is not None:
        sidecar = path.with_name(path.name + TRUTH_SUFFIX)
        sidecar.write_text(json.dumps({**truth.as_dict(), **extra}))


def plot_path(out_dir: Path, run_period: str, run: int, plot_type: str, chunk: int | None) -> Path:
    """The hall naming convention's path of one plot."""
    name = plot_type if chunk is None else f"{plot_type}_{chunk:04d}"
    return out_dir / f"RunPeriod-{run_period}" / f"Run{run}" / f"{name}.png"


def run_simulation(
    cfg: SimulationConfig,
    on_image: Callable[[Path, Truth], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Write batches until a limit (runs, count, once) is reached; return images written."""
    rng = np.random.default_rng(cfg.seed)
    written, batch = 0, 0
    while True:
        run = cfg.start_run + batch // cfg.chunks_per_run
        chunk_no = batch % cfg.chunks_per_run
        if cfg.runs is not None and run >= cfg.start_run + cfg.runs:
            return written
        started = time.monotonic()
        for spec in cfg.plot_types:
            if cfg.count is not None and written >= cfg.count:
                return written
            label = choose_label(spec, cfg.bad_fraction, rng)
            image, truth = make_plot(spec, label, rng, hard=cfg.hard)
            chunk = chunk_no if cfg.chunks_per_run > 1 else None
            path = plot_path(cfg.out_dir, cfg.run_period, run, spec.name, chunk)
            extra = {"plot_type": spec.name, "run_number": run, "chunk": chunk}
            write_plot(path, image, truth if cfg.truth else None, extra)
            written += 1
            if on_image is not None:
                on_image(path, truth)
        batch += 1
        if cfg.once:
            return written
        sleep(max(cfg.interval - (time.monotonic() - started), 0.0))


def write_labelled_set(
    out_dir: Path,
    spec: PlotTypeSpec,
    counts: dict[str, int],
    seed: int = 0,
    *,
    hard: bool = False,
    label_noise: float = 0.0,
) -> dict[str, int]:
    """Write ``counts[label]`` plots per label as ``out_dir/<Label>/<plot_type>_<i>.png``.

    With ``label_noise`` a plot is filed under another of ``counts``' labels at that rate
    (its sidecar keeps the true label). Returns the images written per folder label.
    """
    rng = np.random.default_rng(seed)
    labels = list(counts)
    written: dict[str, int] = {}
    for label, n in counts.items():
        for i in range(n):
            image, truth = make_plot(spec, label, rng, hard=hard)
            filed = label
            if len(labels) > 1 and rng.random() < label_noise:
                filed = str(rng.choice([lb for lb in labels if lb != label]))
            path = out_dir / filed / f"{spec.name}_{label}_{i:05d}.png"
            extra: dict[str, object] = {"plot_type": spec.name, "noisy_label": filed != label}
            write_plot(path, image, truth, extra)
            written[filed] = written.get(filed, 0) + 1
    return written


def read_truth(image_path: Path | str) -> dict[str, object] | None:
    """The truth sidecar of a simulated image, or None when there is none."""
    sidecar = Path(str(image_path) + TRUTH_SUFFIX)
    if not sidecar.is_file():
        return None
    data: dict[str, object] = json.loads(sidecar.read_text())
    return data
