"""Synthetic monitoring plots with injected problems, one generator per kind of plot.

``make_plot(spec, label, rng)`` draws a plot whose true label is ``label`` and returns the
image with its ground truth: which problem was injected and the box (pixels, x0 y0 x1 y1,
exclusive end) where it is. Good and NoData plots have no box.

What each label looks like (from the seeds' descriptions of bad plots):
- Good: nominal shape with Poisson fluctuations, small run-to-run jitter.
- Bad: a dead sector (2-D maps, the whole sector empty), a moved or widened timing peak,
  a second peak, a gain drop or missing peak (spectra), a shifted drift-time edge or a
  dead drift region, a wrong multiplicity, climbing error counters.
- NoData: too few entries to judge.
- HotChannel: one cell or bin firing far above its neighbours.
- Acceptable: a mild version of a Bad problem (a sector at 60 % efficiency, a small shift).
- Cosmics / LED / Amorphous: flat low-rate fill, a pulser comb, structureless noise.

``hard=True`` draws what a real hall's shift crew misses at a glance: subtle defects (a
few dead channels, a gain shift of about 5 %, a peak widened by 20-40 %, a faint second
peak, a small shift), fewer entries (more Poisson noise) and larger channel-to-channel
gain spread, with less run-to-run jitter so a subtle defect is still a defect. Boxes are
written as in the normal mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from hydra_trainer import render
from hydra_trainer.catalog import PlotTypeSpec
from hydra_trainer.render import FRAME

Box = list[int]


@dataclass
class Truth:
    """What was injected into a simulated plot."""

    label: str
    defect: str | None = None
    box: Box | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "defect": self.defect, "box": self.box}


def _x_box(lo: float, hi: float) -> Box:
    """A full-height box over the plot area between fractions ``lo`` and ``hi`` of the x axis."""
    lo, hi = max(lo, 0.0), min(hi, 1.0)
    x0 = FRAME.x0 + int(np.floor(lo * FRAME.width))
    x1 = FRAME.x0 + int(np.ceil(hi * FRAME.width))
    return [x0, FRAME.y0, max(x1, x0 + 4), FRAME.y1]


def _fill(density: np.ndarray, entries: int, rng: np.random.Generator) -> np.ndarray:
    p = density / density.sum()
    counts: np.ndarray = rng.poisson(p * entries).astype(float)
    return counts


def _entries(label: str, rng: np.random.Generator, nominal: float, hard: bool = False) -> int:
    if label == "NoData":
        return int(rng.integers(4, 40))
    # A realistic hall: many chunks carry far fewer entries than the nominal.
    return int(nominal * (rng.uniform(0.15, 0.8) if hard else rng.uniform(0.5, 2.0)))


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    out: np.ndarray = np.exp(-0.5 * ((x - mu) / sigma) ** 2)
    return out


def _centres(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


# --- 1-D kinds: each returns (density over bins, truth) ------------------------------------


def _timing(label: str, rng: np.random.Generator, hard: bool = False) -> tuple[np.ndarray, Truth]:
    x = _centres(80)
    jitter = 0.01 if hard else 0.02
    mu, sigma = (
        0.5 + rng.uniform(-jitter, jitter),
        0.035 * (rng.uniform(0.95, 1.05) if hard else rng.uniform(0.9, 1.1)),
    )
    bg = rng.uniform(0.01, 0.04)
    truth = Truth(label)
    if label in ("Bad", "Acceptable"):
        strong = label == "Bad"
        defect = (
            rng.choice(["shifted_peak", "broadened_peak", "double_peak"])
            if strong
            else ("shifted_peak")
        )
        if defect == "shifted_peak":
            shift = rng.uniform(0.035, 0.06) if hard else rng.uniform(0.2, 0.32)
            mu += rng.choice([-1, 1]) * (shift if strong else 0.06)
        elif defect == "broadened_peak":
            sigma *= rng.uniform(1.2, 1.4) if hard else rng.uniform(3.0, 4.0)
        truth = Truth(label, str(defect), _x_box(mu - 2.5 * sigma, mu + 2.5 * sigma))
        if defect == "double_peak":
            mu2 = mu + rng.choice([-1, 1]) * rng.uniform(0.22, 0.3)
            truth.box = _x_box(mu2 - 2.5 * sigma, mu2 + 2.5 * sigma)
            faint = rng.uniform(0.06, 0.12) if hard else rng.uniform(0.6, 1.0)
            return bg + _gauss(x, mu, sigma) + faint * _gauss(x, mu2, sigma), truth
    return bg + _gauss(x, mu, sigma), truth


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def _drift(label: str, rng: np.random.Generator, hard: bool = False) -> tuple[np.ndarray, Truth]:
    x = _centres(80)
    t0, tmax = 0.12 + rng.uniform(-0.01, 0.01), 0.72 + rng.uniform(-0.02, 0.02)
    truth = Truth(label)
    dead: tuple[float, float] | None = None
    expected = t0
    left = 0.05  # what is left of a dead region's rate
    if label in ("Bad", "Acceptable"):
        strong = label == "Bad"
        if strong and rng.random() < 0.5:
            a = rng.uniform(t0 + 0.1, tmax - 0.3)
            dead = (a, a + (rng.uniform(0.05, 0.08) if hard else rng.uniform(0.18, 0.25)))
            left = rng.uniform(0.3, 0.5) if hard else 0.05
            truth = Truth(label, "dead_drift_region", _x_box(*dead))
        else:
            # A late t0 moves the leading edge only (the maximum drift time stays): the
            # plot changes between the expected edge and the observed one, which is the box.
            shift = (
                (rng.uniform(0.03, 0.05) if hard else rng.uniform(0.15, 0.22)) if strong else 0.04
            )
            t0 = t0 + shift
            truth = Truth(label, "shifted_t0", _x_box(expected - 0.04, t0 + 0.05))
    # A flat top after the expected edge, then the fall towards tmax: the profile does not
    # move with t0, and the tallest bin (which scales the drawing) stays where it was.
    slope = 1.2 - 0.6 * np.clip(x - expected - 0.25, 0, None)
    density = _sigmoid((x - t0) / 0.01) * _sigmoid((tmax - x) / 0.02) * slope
    if dead is not None:
        density = np.where((x > dead[0]) & (x < dead[1]), density * left, density)
    return 0.005 + np.clip(density, 0, None), truth


def _moyal(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    z = (x - mu) / sigma
    out: np.ndarray = np.exp(-0.5 * (z + np.exp(-z)))
    return out


def _spectrum(label: str, rng: np.random.Generator, hard: bool = False) -> tuple[np.ndarray, Truth]:
    x = _centres(64)
    jitter = 0.01 if hard else 0.03
    mu, sigma = (
        0.45 + rng.uniform(-jitter, jitter),
        0.04 * (rng.uniform(0.95, 1.05) if hard else rng.uniform(0.9, 1.1)),
    )
    # The pedestal is the tallest thing on the plot, as on an ADC spectrum, so the drawing's
    # scale does not depend on the peak: a problem with the peak shows at the peak.
    background = 1.2 * np.exp(-x / 0.06)
    truth = Truth(label)
    peak_scale = 1.0
    if label in ("Bad", "Acceptable"):
        if label == "Bad" and rng.random() < 0.4:
            peak_scale = rng.uniform(0.7, 0.85) if hard else 0.0
            truth = Truth(label, "missing_peak", _x_box(mu - 3 * sigma, mu + 5 * sigma))
        else:
            # A gain drop moves the peak down towards the pedestal.
            drop = rng.uniform(0.93, 0.95) if hard else rng.uniform(0.45, 0.55)
            mu = max(mu * (drop if label == "Bad" else 0.85), 0.2)
            truth = Truth(label, "gain_shift", _x_box(mu - 3 * sigma, mu + 5 * sigma))
    return 0.01 + background + peak_scale * _moyal(x, mu, sigma), truth


def _multiplicity(
    label: str, rng: np.random.Generator, hard: bool = False
) -> tuple[np.ndarray, Truth]:
    k = np.arange(32)
    mean = rng.uniform(4.8, 5.2) if hard else rng.uniform(4.0, 6.0)
    truth = Truth(label)
    spike = 0.0
    if label in ("Bad", "Acceptable"):
        if label == "Bad" and rng.random() < 0.4:
            spike = rng.uniform(0.15, 0.3) if hard else rng.uniform(2.0, 4.0)
            truth = Truth(label, "empty_events", _x_box(0.0, 3 / 32))
        else:
            bad_mean = rng.uniform(6.5, 7.5) if hard else rng.uniform(15.0, 20.0)
            mean = bad_mean if label == "Bad" else mean + 2.0
            sd = np.sqrt(mean)
            truth = Truth(
                label,
                "shifted_multiplicity",
                _x_box((mean - 2.5 * sd) / 32, (mean + 2.5 * sd) / 32),
            )
    log_p = k * np.log(mean) - mean - np.array([np.sum(np.log(np.arange(1, i + 1))) for i in k])
    density = np.exp(log_p)
    density[0] += spike * density.max()
    return density, truth


def _counter(label: str, rng: np.random.Generator, hard: bool = False) -> tuple[np.ndarray, Truth]:
    x = _centres(64)
    density = np.full_like(x, 1.0)
    truth = Truth(label)
    if label in ("Bad", "Acceptable"):
        start = rng.uniform(0.3, 0.7)
        slope = (rng.uniform(1.5, 3.0) if hard else rng.uniform(30, 60)) if label == "Bad" else 2.0
        density = density + np.clip(x - start, 0, None) * slope
        truth = Truth(label, "climbing_errors", _x_box(start, 1.0))
    return density, truth


ONE_D: dict[str, tuple[Callable[..., tuple[np.ndarray, Truth]], int]] = {
    "timing": (_timing, 20_000),
    "drift": (_drift, 40_000),
    "spectrum": (_spectrum, 30_000),
    "multiplicity": (_multiplicity, 20_000),
    "counter": (_counter, 3_000),
}


def _other_1d(label: str, n_bins: int, rng: np.random.Generator) -> np.ndarray:
    if label == "LED":
        density = np.full(n_bins, 0.01)
        density[:: max(n_bins // 8, 1)] = 1.0
        return density
    if label == "Amorphous":
        return np.asarray(rng.uniform(0.2, 1.0, n_bins))
    return np.full(n_bins, 1.0)  # Cosmics: a flat, low-rate fill


# --- 2-D maps -------------------------------------------------------------------------------


@functools.cache
def _disc_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell index per pixel of a six-sector disc (10 rings x 8 phi bins per sector)."""
    h, w = render.HEIGHT, render.WIDTH
    cy, cx = (FRAME.y0 + FRAME.y1) / 2, (FRAME.x0 + FRAME.x1) / 2
    radius = FRAME.height / 2 - 3
    yy, xx = np.mgrid[0:h, 0:w]
    dx, dy = (xx + 0.5 - cx), (cy - yy - 0.5)
    r = np.hypot(dx, dy) / radius
    phi = np.mod(np.arctan2(dy, dx) + np.pi / 6, 2 * np.pi)  # sector 0 centred at 0 degrees
    sector = (phi // (np.pi / 3)).astype(int)
    ring = np.floor((r - 0.2) / 0.08).astype(int)
    phi_bin = np.floor(np.mod(phi, np.pi / 3) / (np.pi / 3) * 8).astype(int)
    # A thin gap between sectors, as between the real detector's sectors.
    boundary = np.minimum(np.mod(phi, np.pi / 3), np.pi / 3 - np.mod(phi, np.pi / 3))
    gap = boundary * r * radius < 1.2
    inside = (r >= 0.2) & (r < 1.0) & ~gap
    cell = np.where(inside, (sector * 10 + ring) * 8 + phi_bin, -1)
    cell_r = 0.2 + 0.08 * (np.arange(480) // 8 % 10 + 0.5)
    return cell, cell_r, np.arange(480) // 80


@functools.cache
def _grid_geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell index per pixel of a 6 sectors x 24 channels map (one row per sector)."""
    rows, cols = 6, 24
    cell = np.full((render.HEIGHT, render.WIDTH), -1)
    ys = np.linspace(FRAME.y0, FRAME.y1, rows + 1).round().astype(int)
    xs = np.linspace(FRAME.x0, FRAME.x1, cols + 1).round().astype(int)
    for i in range(rows):
        for j in range(cols):
            cell[ys[i] + 1 : ys[i + 1] - 1, xs[j] : xs[j + 1]] = i * cols + j
    channel = np.arange(rows * cols) % cols
    return cell, 0.6 + 0.4 * np.sin(np.pi * (channel + 0.5) / cols), np.arange(rows * cols) // cols


def _cell_box(cell: np.ndarray, cells: np.ndarray, pad: int = 0) -> Box:
    ys, xs = np.nonzero(np.isin(cell, cells))
    return [
        max(int(xs.min()) - pad, 0),
        max(int(ys.min()) - pad, 0),
        min(int(xs.max()) + 1 + pad, render.WIDTH),
        min(int(ys.max()) + 1 + pad, render.HEIGHT),
    ]


def _dead_cells(
    sector: np.ndarray, disc: bool, hard: bool, rng: np.random.Generator
) -> tuple[str, np.ndarray]:
    """Cells of a dead region: a whole (or half) sector, or a few adjacent channels (hard)."""
    s = int(rng.integers(0, 6))
    dead = np.nonzero(sector == s)[0]
    if hard:  # a few adjacent channels: 2..4 phi bins of one ring (disc), or of one row
        first = int(rng.integers(0, len(dead) - 4))
        return "dead_channels", dead[first : first + int(rng.integers(2, 5))]
    if disc and rng.random() < 0.3:  # the outer half of the sector only
        dead = dead[(dead // 8 % 10) >= 5]
    return "dead_sector", dead


def _map(
    spec: PlotTypeSpec, label: str, rng: np.random.Generator, hard: bool = False
) -> tuple[np.ndarray, Truth]:
    disc = spec.kind == "occupancy_disc"
    cell, profile, sector = _disc_geometry() if disc else _grid_geometry()
    n_cells = len(profile)
    base = np.exp(-2.5 * profile) if disc else profile
    spread = 0.25 if hard else 0.15  # channel-to-channel gain spread
    density = base * rng.uniform(1 - spread, 1 + spread, n_cells)
    truth = Truth(label)
    hot_is_bad = "HotChannel" not in spec.labels
    if label == "Bad" and (not hot_is_bad or rng.random() < 0.75):
        defect, dead = _dead_cells(sector, disc, hard, rng)
        density[dead] = 0.0
        truth = Truth(label, defect, _cell_box(cell, dead))
    elif label in ("Bad", "HotChannel"):
        c = int(rng.integers(0, n_cells))
        density[c] = density.max() * (rng.uniform(3, 6) if hard else rng.uniform(30, 60))
        truth = Truth(label, "hot_channel", _cell_box(cell, np.array([c]), pad=3))
    elif label == "Acceptable":
        s = int(rng.integers(0, 6))
        weak = np.nonzero(sector == s)[0]
        density[weak] *= 0.6
        truth = Truth(label, "weak_sector", _cell_box(cell, weak))
    elif label in ("Cosmics", "LED", "Amorphous"):
        density = _other_1d(label, n_cells, rng)
    entries = _entries(label, rng, 100 * n_cells, hard)
    counts = _fill(density, entries, rng)
    canvas = render.blank_canvas()
    render.draw_cells(canvas, cell, counts)
    return canvas, truth


def make_density(
    spec: PlotTypeSpec, label: str, rng: np.random.Generator, hard: bool = False
) -> tuple[np.ndarray, Truth]:
    """The expected counts per bin of a 1-D plot of ``spec`` with true label ``label``."""
    generate, _ = ONE_D[spec.kind]
    if label in ("Cosmics", "LED", "Amorphous"):
        return _other_1d(label, 64, rng), Truth(label)
    if label == "HotChannel":
        density, truth = generate("Good", rng, hard)
        b = int(rng.integers(0, len(density)))
        density[b] = density.max() * (rng.uniform(2, 3) if hard else rng.uniform(8, 15))
        return density, Truth(
            label, "hot_channel", _x_box(b / len(density), (b + 1) / len(density))
        )
    density, truth = generate(label, rng, hard)
    return density, truth


def make_plot(
    spec: PlotTypeSpec, label: str, rng: np.random.Generator, hard: bool = False
) -> tuple[Image.Image, Truth]:
    """Draw one plot of ``spec`` whose true label is ``label`` (subtle problems if ``hard``)."""
    if spec.kind.startswith("occupancy"):
        canvas, truth = _map(spec, label, rng, hard)
        entries = None
    else:
        density, truth = make_density(spec, label, rng, hard)
        entries = _entries(label, rng, ONE_D[spec.kind][1], hard)
        counts = _fill(density, entries, rng)
        canvas = render.blank_canvas()
        render.draw_histogram(canvas, counts)
    img = render.finish(canvas, spec.name)
    if entries is not None:
        ImageDraw.Draw(img).text((render.WIDTH - 80, 2), f"Entries {entries}", fill=(0, 0, 0))
    return img, truth
