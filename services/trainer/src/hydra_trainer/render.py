"""Drawing monitoring plots the way ROOT-based online monitoring does, with numpy and Pillow.

A plot is a small RGB canvas (256 x 192 by default) with a title, a framed plot area and
either histogram bars (1-D) or colour cells (2-D maps, white where a cell is empty).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 256, 192
BAR_COLOUR = (64, 104, 196)

# ROOT's "bird"-like palette: low = dark blue, high = yellow; empty cells stay white.
_PALETTE = np.array(
    [(53, 42, 135), (15, 92, 221), (18, 125, 216), (7, 156, 207), (21, 177, 180),
     (89, 189, 140), (165, 190, 107), (225, 185, 82), (252, 206, 46), (249, 251, 14)],
    dtype=np.float32,
)  # fmt: skip


@dataclass(frozen=True)
class Frame:
    """The plot area inside the canvas, in pixels (x1, y1 exclusive)."""

    x0: int = 28
    y0: int = 16
    x1: int = WIDTH - 8
    y1: int = HEIGHT - 16

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


FRAME = Frame()


def colour_map(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB through the palette (``[..., 3]`` uint8)."""
    v = np.clip(values, 0.0, 1.0) * (len(_PALETTE) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_PALETTE) - 1)
    t = (v - lo)[..., None]
    rgb: np.ndarray = (_PALETTE[lo] * (1 - t) + _PALETTE[hi] * t).astype(np.uint8)
    return rgb


def blank_canvas() -> np.ndarray:
    """A white canvas."""
    return np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)


def bin_edges(n_bins: int, frame: Frame = FRAME) -> np.ndarray:
    """Pixel x positions of the edges of ``n_bins`` equal bins across the plot area."""
    return np.round(np.linspace(frame.x0, frame.x1, n_bins + 1)).astype(int)


def draw_histogram(canvas: np.ndarray, counts: np.ndarray, frame: Frame = FRAME) -> None:
    """Draw 1-D bars, auto-scaled so the tallest bar fills 90 % of the plot height."""
    peak = float(counts.max()) if counts.size and counts.max() > 0 else 1.0
    edges = bin_edges(len(counts), frame)
    heights = np.round(counts / peak * 0.9 * frame.height).astype(int)
    for i, h in enumerate(heights):
        if h > 0:
            canvas[frame.y1 - h : frame.y1, edges[i] : max(edges[i + 1] - 1, edges[i] + 1)] = (
                BAR_COLOUR
            )


def draw_cells(canvas: np.ndarray, cell_index: np.ndarray, counts: np.ndarray) -> None:
    """Paint a 2-D map: ``cell_index`` (canvas-shaped, -1 = outside) picks each pixel's cell."""
    peak = float(counts.max()) if counts.max() > 0 else 1.0
    colours = colour_map(counts / peak)
    inside = cell_index >= 0
    filled = inside & (counts[np.maximum(cell_index, 0)] > 0)
    canvas[filled] = colours[cell_index[filled]]


def finish(canvas: np.ndarray, title: str, frame: Frame = FRAME, ticks: int = 8) -> Image.Image:
    """Add the frame, tick marks and the title; return the Pillow image."""
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    draw.rectangle((frame.x0 - 1, frame.y0 - 1, frame.x1, frame.y1), outline=(0, 0, 0))
    for x in np.linspace(frame.x0, frame.x1, ticks + 1):
        draw.line((int(x), frame.y1, int(x), frame.y1 + 3), fill=(0, 0, 0))
    for y in np.linspace(frame.y0, frame.y1, 5):
        draw.line((frame.x0 - 4, int(y), frame.x0 - 1, int(y)), fill=(0, 0, 0))
    draw.text((frame.x0, 2), title, fill=(0, 0, 0))
    return img
