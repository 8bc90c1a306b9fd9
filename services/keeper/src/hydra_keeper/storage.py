"""Image and heat-map files under the storage root (layout: docs/contracts.md).

Files are written to a temporary name and renamed into place, and always before the
database commit that refers to them: a crash leaves at worst an orphan file, never a row
without its file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hydra.v1 import report_pb2
from PIL import Image

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_IMAGE_EXTS = {"png", "jpg", "jpeg", "gif", "bmp", "webp"}


def safe_name(name: str) -> str:
    """A name usable as one path element (no separators, no leading dot)."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned or "_"


def image_ext(source_path: str, image: bytes, fallback: str) -> str:
    """The image's file extension: from its source path, else from its bytes, else fallback."""
    suffix = source_path.rpartition(".")[2].lower() if "." in source_path else ""
    if suffix in _IMAGE_EXTS:
        return suffix
    if image.startswith(b"\x89PNG"):
        return "png"
    if image.startswith(b"\xff\xd8"):
        return "jpg"
    return safe_name(fallback.lower() or "png")


def order_day(order_id: str) -> str:
    """The UTC day of a UUIDv7 order id (so a replayed report maps to the same path)."""
    try:
        ms = uuid.UUID(order_id).int >> 80
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):
        return datetime.now(UTC).strftime("%Y-%m-%d")


def kept_image_path(plot_type: str, order_id: str, ext: str) -> str:
    """Relative path of an image kept for labelling."""
    return f"plots/{safe_name(plot_type)}/{order_day(order_id)}/{safe_name(order_id)}.{ext}"


def kept_heatmap_path(plot_type: str, order_id: str) -> str:
    """Relative path of a kept image's heat-map overlay."""
    return f"heatmaps/{safe_name(plot_type)}/{order_day(order_id)}/{safe_name(order_id)}.png"


def live_image_path(plot_type: str, order_id: str, ext: str) -> str:
    """Relative path of the Run page's latest image of a plot type."""
    return f"live/{safe_name(plot_type)}/{safe_name(order_id)}.{ext}"


def live_heatmap_path(plot_type: str, order_id: str) -> str:
    """Relative path of the Run page's latest heat-map overlay of a plot type."""
    return f"live/{safe_name(plot_type)}/{safe_name(order_id)}.heatmap.png"


def write_atomic(root: Path, rel: str, data: bytes, durable: bool) -> None:
    """Write ``data`` to ``root/rel`` through a temporary file and a rename.

    ``durable`` files (kept for labelling) are fsynced before the rename, since the database
    row that follows must never point at a file a power cut could lose; live files are
    replaced within seconds anyway.
    """
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk must not keep half-written files either
        raise


def storage_problem(exc: OSError) -> str:
    """The reason a file could not be written, as the metric names it."""
    return "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"


def remove_quietly(root: Path, rel: str) -> None:
    """Delete a stored file; a file already gone is fine."""
    try:
        (root / rel).unlink()
    except FileNotFoundError:
        pass


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(image: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header, or None if it cannot be read.

    A PNG's size is read from its IHDR chunk directly: Pillow's decompression-bomb guard is a
    process-wide setting, and a heat map must not depend on it."""
    if image[:8] == PNG_SIGNATURE and image[12:16] == b"IHDR" and len(image) >= 24:
        width, height = struct.unpack(">II", image[16:24])
        return (width, height) if width and height else None
    try:
        with Image.open(io.BytesIO(image)) as im:
            return im.size
    except Exception:
        return None


# Control points of the colour map: blue (cold) → cyan → green → yellow → red (hot).
_STOPS = (0.0, 0.25, 0.5, 0.75, 1.0)
_RED = (0.0, 0.0, 0.0, 1.0, 1.0)
_GREEN = (0.0, 1.0, 1.0, 1.0, 0.0)
_BLUE = (1.0, 1.0, 0.0, 0.0, 0.0)


def _colormap(heat: np.ndarray) -> np.ndarray:
    """0..1 heat → 0..1 RGB along the blue-to-red colour map."""
    return np.stack([np.interp(heat, _STOPS, c) for c in (_RED, _GREEN, _BLUE)], axis=-1)


# The overlay is stretched over the image by the browser: its own resolution need not be the
# image's. A 7000 x 7000 plot must not become a 7000 x 7000 RGBA heat map (196 MB in memory).
MAX_HEATMAP_SIDE = 1024


def bounded(size: tuple[int, int], longest: int) -> tuple[int, int]:
    """``size`` scaled down (aspect kept) so its longest side is at most ``longest``."""
    w, h = size
    if max(w, h) <= longest:
        return size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def render_heatmap(heat_map: report_pb2.HeatMap, size: tuple[int, int] | None) -> bytes | None:
    """An RGBA PNG overlay of a Grad-CAM map: colour by heat, alpha proportional to heat.

    The map is upscaled (bilinear) to ``size`` (the image's width, height), or kept at its
    own size when the image size is unknown. Returns None for an empty or inconsistent map.
    """
    h, w = int(heat_map.height), int(heat_map.width)
    if h <= 0 or w <= 0 or len(heat_map.values) != h * w:
        return None
    heat = np.asarray(heat_map.values, dtype=np.float32).reshape(h, w)
    heat = np.clip(np.nan_to_num(heat, nan=0.0), 0.0, 1.0)
    rgba = np.empty((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = (_colormap(heat) * 255.0 + 0.5).astype(np.uint8)
    rgba[..., 3] = (heat * 255.0 + 0.5).astype(np.uint8)
    overlay = Image.fromarray(rgba)
    if size is not None:
        size = bounded(size, MAX_HEATMAP_SIDE)
        if size != (w, h):
            overlay = overlay.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    overlay.save(out, format="PNG", compress_level=3)
    return out.getvalue()
