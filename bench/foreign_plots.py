"""Monitoring plots the simulator did not draw: matplotlib figures with axes and a colour bar.

The model-quality benchmark trains and tests on these to check that the heat maps point at
the defect whatever draws the plot: ROOT-like output with tick labels, axis titles, a
statistics box and (2-D) a colour bar, at another size than the simulator's canvas.

Plot kinds (``FOREIGN``): ``timing`` and ``spectrum`` reuse the simulator's 1-D shapes and
defects (``hydra_trainer.plots.make_density``) drawn as a filled step histogram; ``map2d``
is a 24 x 18 block map with a dense centre, where Bad is a small rectangle of dead (empty)
or hot blocks far from the centre. Every image gets the simulator's truth sidecar, its box
in this image's pixels and ``image_size`` ``[width, height]``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from hydra_trainer.catalog import PlotTypeSpec
from hydra_trainer.plots import Truth, make_density
from hydra_trainer.render import FRAME
from hydra_trainer.simulate import write_plot

FOREIGN = (
    PlotTypeSpec("MPL_timing", "MPL", "timing"),
    PlotTypeSpec("MPL_spectrum", "MPL", "spectrum"),
    PlotTypeSpec("MPL_map2d", "MPL", "map2d"),
)
SIZE = (320, 240)  # pixels (width, height): not the simulator's 256 x 192
_DPI = 80
_NX, _NY = 24, 18


def _figure() -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(SIZE[0] / _DPI, SIZE[1] / _DPI), dpi=_DPI)
    ax.tick_params(labelsize=6)
    return fig, ax


def _pixel_box(fig: Any, ax: Any, x0: float, x1: float, y0: float, y1: float) -> list[int]:
    """A data-space rectangle as an image-pixel box (x0 y0 x1 y1, top-left origin)."""
    fig.canvas.draw()
    (px0, py0), (px1, py1) = ax.transData.transform([(x0, y0), (x1, y1)])
    h = SIZE[1]
    left, right = sorted((px0, px1))
    top, bottom = sorted((h - py0, h - py1))
    return [int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), int(np.ceil(bottom))]


def _image(fig: Any) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    plt.close(fig)
    buf.seek(0)
    with Image.open(buf) as img:
        return img.convert("RGB")


def _one_d(spec: PlotTypeSpec, label: str, rng: np.random.Generator) -> tuple[Image.Image, Truth]:
    density, truth = make_density(PlotTypeSpec(spec.name, "MPL", spec.kind), label, rng)
    entries = int(rng.integers(4, 40)) if label == "NoData" else int(20_000 * rng.uniform(0.5, 2))
    counts = rng.poisson(density / density.sum() * entries)
    n = len(counts)
    fig, ax = _figure()
    ax.stairs(counts, np.arange(n + 1), fill=True, color="#3c64c8")
    ax.set_xlim(0, n)
    ax.set_ylim(0, max(float(counts.max()), 1.0) * 1.15)
    ax.set_title(spec.name, fontsize=8)
    ax.set_xlabel("channel", fontsize=7)
    ax.set_ylabel("counts", fontsize=7)
    mean = np.average(np.arange(n), weights=counts + 1e-9)
    ax.text(0.98, 0.95, f"Entries {entries}\nMean {mean:.1f}",
            transform=ax.transAxes, ha="right", va="top", fontsize=6,
            bbox={"facecolor": "white", "edgecolor": "black", "linewidth": 0.5})  # fmt: skip
    fig.tight_layout()
    if truth.box is not None:
        # The simulator's box is in its own canvas pixels: back to bins, then to these pixels.
        lo = (truth.box[0] - FRAME.x0) / FRAME.width * n
        hi = (truth.box[2] - FRAME.x0) / FRAME.width * n
        truth.box = _pixel_box(fig, ax, lo, hi, 0.0, ax.get_ylim()[1])
    return _image(fig), truth


def _map2d(label: str, rng: np.random.Generator) -> tuple[Image.Image, Truth]:
    yy, xx = np.mgrid[0:_NY, 0:_NX] + 0.5
    cx, cy = _NX / 2 + rng.uniform(-1, 1), _NY / 2 + rng.uniform(-1, 1)
    r2 = ((xx - cx) / 3.6) ** 2 + ((yy - cy) / 3) ** 2
    density = (np.exp(-0.5 * r2) * 8 + 0.4) * rng.uniform(0.85, 1.15, (_NY, _NX))
    truth = Truth(label)
    if label == "Bad":
        w, h = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        while True:  # far from the dense centre
            x0, y0 = int(rng.integers(1, _NX - w - 1)), int(rng.integers(1, _NY - h - 1))
            if np.hypot((x0 + w / 2 - cx) / 3.6, (y0 + h / 2 - cy) / 3) > 2.2:
                break
        hot = rng.random() < 0.5
        density[y0 : y0 + h, x0 : x0 + w] = 3.0 if hot else 0.0
        truth = Truth(label, "hot_blocks" if hot else "dead_blocks")
    entries = (
        int(rng.integers(10, 60)) if label == "NoData" else int(60_000 * rng.uniform(0.7, 1.5))
    )
    counts = rng.poisson(density / density.sum() * entries).astype(float)
    fig, ax = _figure()
    shown = np.ma.masked_equal(counts, 0)  # empty blocks stay white, as ROOT's COLZ draws them
    mesh = ax.pcolormesh(np.arange(_NX + 1), np.arange(_NY + 1), shown, cmap="viridis")
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.ax.tick_params(labelsize=6)
    ax.set_title(f"{FOREIGN[2].name} occupancy", fontsize=8)
    ax.set_xlabel("column", fontsize=7)
    ax.set_ylabel("row", fontsize=7)
    fig.tight_layout()
    if label == "Bad":
        truth.box = _pixel_box(fig, ax, x0, x0 + w, y0, y0 + h)
    return _image(fig), truth


def make_foreign_plot(
    spec: PlotTypeSpec, label: str, rng: np.random.Generator
) -> tuple[Image.Image, Truth]:
    """Draw one plot of ``spec`` (one of ``FOREIGN``) whose true label is ``label``."""
    return _map2d(label, rng) if spec.kind == "map2d" else _one_d(spec, label, rng)


def write_foreign_set(
    out_dir: Path, spec: PlotTypeSpec, counts: dict[str, int], seed: int = 0
) -> None:
    """Write ``counts[label]`` plots per label as ``out_dir/<Label>/*.png`` with sidecars."""
    rng = np.random.default_rng(seed)
    for label, n in counts.items():
        for i in range(n):
            image, truth = make_foreign_plot(spec, label, rng)
            extra: dict[str, object] = {"plot_type": spec.name, "image_size": list(SIZE)}
            write_plot(out_dir / label / f"{spec.name}_{i:05d}.png", image, truth, extra)
