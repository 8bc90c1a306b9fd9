"""Image sizes read from encoded headers, so an oversized image is refused before decoding.

A Hydra model decodes its input inside the graph (``tf.io.decode_image``): a 7,000 x 7,000
PNG becomes a 147 MB uint8 tensor, then 588 MB as float32 before the resize, for a peak
of about 1.4 GB per image (a batch of such images adds up). The model server reads the
width and height from the header of every string input (PNG, JPEG, GIF, BMP: the formats
``decode_image`` takes) and refuses a request with an image above
``HYDRA_MAX_IMAGE_PIXELS`` with INVALID_ARGUMENT. The predictor then splits its batch, so
only that image gets an ERROR verdict.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from tensorflow.core.framework import types_pb2

from hydra_common.errors import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size (not DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an encoded image's header; None when the format is not known
    or the header is cut short (the model's decoder then gives its own error)."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)  # a negative height is a top-down bitmap
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def check_image_sizes(inputs: Mapping[str, Any], max_pixels: int) -> int:
    """Refuse (InvalidInput) a request with an encoded image above ``max_pixels``; returns
    the pixels of all images it carries. Only string tensors are looked at."""
    total = 0
    for alias, proto in inputs.items():
        if proto.dtype != types_pb2.DT_STRING:
            continue
        total += _check(alias, proto.string_val, max_pixels)
    return total


def _check(alias: str, values: Iterable[bytes], max_pixels: int) -> int:
    total = 0
    for index, data in enumerate(values):
        size = image_size(data)
        if size is None:
            continue
        width, height = size
        pixels = width * height
        if pixels > max_pixels:
            raise InvalidInput(
                f"{alias}[{index}]: image of {width} x {height} = {pixels} pixels is above "
                f"the model server's limit of {max_pixels} (HYDRA_MAX_IMAGE_PIXELS)"
            )
        total += pixels
    return total
