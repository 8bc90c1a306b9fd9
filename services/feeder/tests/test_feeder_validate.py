"""Validation of each kind of bad input, on files made here with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from hydra_feeder.validate import Rejected, read_and_validate

MAX_BYTES = 1_000_000
MAX_PIXELS = 100_000


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, fmt)
    return buf.getvalue()


def check(path: Path, root: Path, ext: str = "png") -> bytes:
    return read_and_validate(path, root, ext, MAX_BYTES, MAX_PIXELS)


def reason_of(path: Path, root: Path, ext: str = "png") -> str:
    with pytest.raises(Rejected) as info:
        check(path, root, ext)
    return info.value.reason


def test_good_png_and_jpeg_pass(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(image_bytes())
    assert check(png, tmp_path) == png.read_bytes()
    jpg = tmp_path / "b.jpg"
    jpg.write_bytes(image_bytes("JPEG"))
    assert check(jpg, tmp_path, "jpg") == jpg.read_bytes()


def test_empty(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    assert reason_of(tmp_path / "a.png", tmp_path) == "empty"


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes() + bytes(MAX_BYTES))
    assert reason_of(path, tmp_path) == "too_large"


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_text("this is a log file, not a plot\n" * 10)
    assert reason_of(path, tmp_path) == "not_an_image"


def test_truncated(tmp_path: Path) -> None:
    data = image_bytes(size=(300, 300))
    path = tmp_path / "a.png"
    path.write_bytes(data[: len(data) // 2])
    assert reason_of(path, tmp_path) == "truncated"
    jpg = tmp_path / "b.jpg"
    jpg_data = image_bytes("JPEG", (300, 300))
    jpg.write_bytes(jpg_data[: len(jpg_data) // 3])
    assert reason_of(jpg, tmp_path, "jpg") == "truncated"


def test_damaged_png_data_is_caught_by_its_checksum(tmp_path: Path) -> None:
    # PNG files are not decoded by the feeder; the CRC of every chunk is what catches damage.
    data = bytearray(image_bytes(size=(300, 300)))
    idat = data.index(b"IDAT") + 4
    data[idat + 20] ^= 0xFF  # one flipped byte inside the compressed pixels
    path = tmp_path / "a.png"
    path.write_bytes(bytes(data))
    assert reason_of(path, tmp_path) == "truncated"


def test_decompression_bomb(tmp_path: Path) -> None:
    # Just over the limit (Pillow only warns) and far over it (Pillow raises): both refused.
    over = tmp_path / "over.png"
    over.write_bytes(image_bytes(size=(400, 300)))
    assert reason_of(over, tmp_path) == "decompression_bomb"
    far = tmp_path / "far.png"
    far.write_bytes(image_bytes(size=(1000, 1000)))
    assert reason_of(far, tmp_path) == "decompression_bomb"


def test_format_must_match_extension(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes("JPEG"))
    assert reason_of(path, tmp_path) == "wrong_format"
    gif = tmp_path / "b.png"
    gif.write_bytes(image_bytes("GIF"))
    assert reason_of(gif, tmp_path) == "wrong_format"


def test_symlink_outside_input_dir(tmp_path: Path) -> None:
    root = tmp_path / "input"
    root.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(image_bytes())
    link = root / "a.png"
    link.symlink_to(outside)
    assert reason_of(link, root) == "outside_input_dir"
    inside = root / "real.png"
    inside.write_bytes(image_bytes())
    (root / "b.png").symlink_to(inside)
    assert check(root / "b.png", root) == inside.read_bytes()


def test_an_image_over_the_plot_cap_is_too_large_not_a_bomb(tmp_path: Path) -> None:
    """Under the bomb guard, over the cap on a plot's size: refused before it reaches the
    model server (a 7000 x 7000 plot grew it by 0.8 GB, which it kept)."""
    path = tmp_path / "P.png"
    path.write_bytes(image_bytes(size=(300, 200)))  # 60,000 pixels: under MAX_PIXELS
    with pytest.raises(Rejected) as info:
        read_and_validate(path, tmp_path, "png", MAX_BYTES, MAX_PIXELS, max_image_pixels=50_000)
    assert info.value.reason == "too_large" and "image cap" in info.value.detail
    assert read_and_validate(path, tmp_path, "png", MAX_BYTES, MAX_PIXELS, 60_000)
