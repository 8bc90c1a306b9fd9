"""Checks a file must pass before it becomes an order; each failure has a reason.

Pillow opens, verifies and fully decodes every image, so truncated files and files that are
not images are caught here and not in the model server; ``Image.MAX_IMAGE_PIXELS`` and an
explicit size check stop decompression bombs before decoding.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Reasons a file is not fed. Skips (and `too_old`) leave the file in place; every other reason
# quarantines it.
REASONS = (
    "bad_name",
    "unknown_plot_type",
    "ignored_plot_type",
    "empty",
    "too_large",
    "not_an_image",
    "truncated",
    "decompression_bomb",
    "wrong_format",
    "outside_input_dir",
    "vanished",
    "too_old",
    "error",
)
SKIP_REASONS = frozenset({"unknown_plot_type", "ignored_plot_type"})


class Rejected(Exception):
    """A file that will not be fed, and why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_inside(path: Path, root: Path) -> Path:
    """The file's real path; rejects a symlink that leads outside the input directory."""
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        raise Rejected("outside_input_dir", f"links to {real}")
    return real


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing empty and oversized files before reading them."""
    size = path.stat().st_size
    if size == 0:
        raise Rejected("empty")
    if size > max_bytes:
        raise Rejected("too_large", f"{size} bytes > {max_bytes}")
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)
    if not data:
        raise Rejected("empty")
    if len(data) > max_bytes:
        raise Rejected("too_large", f"more than {max_bytes} bytes")
    return data


def expected_format(extension: str) -> str | None:
    """Pillow's format name for an extension (``png`` -> ``PNG``), None when unknown."""
    return Image.registered_extensions().get("." + extension.lower())


def validate_image(
    data: bytes, extension: str, max_pixels: int, max_image_pixels: int | None = None
) -> str:
    """Check that data is a complete image of the extension's format; returns the format.

    ``max_pixels`` guards against decompression bombs; ``max_image_pixels`` (lower) caps
    what a real plot may be: far larger than any monitoring plot, it would only cost the
    model server memory (it keeps the buffers it grew) for an image it shrinks anyway."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise Rejected("decompression_bomb", f"{width}x{height} pixels > {max_pixels}")
            if max_image_pixels is not None and width * height > max_image_pixels:
                raise Rejected(
                    "too_large", f"{width}x{height} pixels > {max_image_pixels} (image cap)"
                )
            fmt = im.format or ""
            want = expected_format(extension)
            if want is None or fmt != want:
                raise Rejected("wrong_format", f"{fmt} named .{extension}")
            im.verify()
        if fmt != "PNG":
            # PNG's verify() has read every chunk and checked its CRC, the image data
            # included: a cut-off or damaged file is caught without decoding the pixels
            # (half the feeder's CPU per plot). Other formats have no such checksums.
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise Rejected("not_an_image", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        # Pillow reports a broken or cut-off stream with any of these, depending on the codec.
        raise Rejected("truncated", str(exc)) from exc
    return fmt


def read_and_validate(
    path: Path,
    root: Path,
    extension: str,
    max_bytes: int,
    max_pixels: int,
    max_image_pixels: int | None = None,
) -> bytes:
    """Everything a file must pass, in order; returns the bytes to send."""
    real = check_inside(path, root)
    data = read_file(real, max_bytes)
    validate_image(data, extension, max_pixels, max_image_pixels)
    return data
