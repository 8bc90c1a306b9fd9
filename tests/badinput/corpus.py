"""The bad-input corpus: every kind of file a hall can throw at the feeder, and what Hydra
must do with each (docs/bad-input.md is the same table in prose).

``KINDS`` lists them; ``Kind.make(ctx)`` writes one into an input directory (some kinds act
over time: a file still being written grows for a while, a file is deleted before it can be
read). Phase 2 kinds need phase 1 fed first (duplicates of an image already fed).

The plot types the corpus expects (``setup_hall`` in tests/test_badinput_corpus.py makes
them): ``BI_good`` (png, active model), ``BI_jpeg`` (jpg, active model), ``BI_ignored``
(ignored), ``BI_missing`` (active model row, no files on the model server) and
``BI_failing`` (active model whose output has fewer labels than the database lists).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

GOOD = "BI_good"
JPEG_TYPE = "BI_jpeg"
IGNORED = "BI_ignored"
MISSING = "BI_missing"
FAILING = "BI_failing"
PERIOD = "RunPeriod-2026-02"

# Outcomes (what happens to the file and in the database).
QUARANTINED = "quarantined"  # moved to quarantine/<reason>/<path> with a .reason.txt note
SKIPPED = "skipped"  # left in place, remembered (fed if its plot type becomes active)
VERDICT = "verdict"  # fed; exactly one run_history row with the model's verdict
ERROR_VERDICT = "error_verdict"  # fed; exactly one run_history row with verdict "Error"
FED_AGAIN = "fed_again"  # a rewrite is a new observation: one more row for the path
NOT_A_FILE = "not_looked_at"  # never a candidate: no log, no metric, no row
FORGOTTEN = "forgotten"  # gone before it was complete: no row, nothing quarantined

# Settings the corpus is built for (the test starts the stack with them).
MAX_FILE_BYTES = 3_000_000
MAX_PIXELS = 50_000_000  # Hydra's default
STABLE_SECONDS = 2.0  # a writer pausing longer than this would be read too early
MODEL_SERVER_RETRY_SECONDS = 3.0


@dataclass
class Context:
    """Where kinds are written: the input directory and a directory outside it."""

    input_dir: Path
    outside_dir: Path
    seed: int = 0
    fed_before: dict[str, bytes] = field(default_factory=dict)  # phase-1 good files

    def write(self, rel: str, data: bytes) -> Path:
        """Write data at rel under the input directory (parents made)."""
        path = self.input_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@dataclass(frozen=True)
class Kind:
    """One kind of input: its path, the reason the feeder gives, and what must happen."""

    name: str
    what: str  # one line for the documentation table
    rel: str  # path under the input dir (str; a non-UTF-8 name is surrogate-escaped)
    outcome: str
    reason: str | None  # hydra_feeder_rejected_total label, None when not rejected
    make: Callable[[Context], None]
    phase: int = 1
    plot_type: str = GOOD
    note: str = ""  # what the system does, for the documentation


# --- images ----------------------------------------------------------------------------------


def noise_png(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> bytes:
    """A PNG of random pixels (every seed gives another image)."""
    rng = random.Random(seed)
    w, h = size
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    raw = bytes(rng.randrange(256) for _ in range(w * h * channels))
    return encode(Image.frombytes(mode, size, raw), "PNG")


def encode(im: Image.Image, fmt: str) -> bytes:
    """The image encoded in fmt."""
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _rel(run: int, name: str) -> str:
    return f"{PERIOD}/Run{run}/{name}"


# --- the kinds -------------------------------------------------------------------------------


def _simple(
    name: str,
    what: str,
    rel: str,
    outcome: str,
    reason: str | None,
    data: Callable[[], bytes],
    **kw: object,
) -> Kind:
    holder: dict[str, Kind] = {}

    def make(ctx: Context) -> None:
        ctx.write(holder["k"].rel, data())

    kind = Kind(name, what, rel, outcome, reason, make, **kw)  # type: ignore[arg-type]
    holder["k"] = kind
    return kind


def _growing(rel: str) -> Callable[[Context], None]:
    def make(ctx: Context) -> None:
        data = noise_png(4242, (96, 80))
        path = ctx.input_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pieces = 25  # 25 appends 0.1 s apart: far below STABLE_SECONDS each time
        step = len(data) // pieces + 1
        with path.open("wb") as f:
            for i in range(0, len(data), step):
                f.write(data[i : i + step])
                f.flush()  # stat sees the new size at once; no fsync, which can stall for seconds
                time.sleep(0.1)

    return make


def _deleted(rel: str) -> Callable[[Context], None]:
    def make(ctx: Context) -> None:
        path = ctx.write(rel, noise_png(777))
        time.sleep(0.3)  # seen by inotify, well before it could be stable
        path.unlink()

    return make


def _symlink(rel: str) -> Callable[[Context], None]:
    def make(ctx: Context) -> None:
        target = ctx.outside_dir / "secret.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(noise_png(31337))
        path = ctx.input_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    return make


def _directory(rel: str) -> Callable[[Context], None]:
    def make(ctx: Context) -> None:
        (ctx.input_dir / rel).mkdir(parents=True)

    return make


def _rewrite_same(ctx: Context) -> None:
    time.sleep(0.01)  # a new mtime, the same bytes
    (ctx.input_dir / DUP_REL).write_bytes(ctx.fed_before[DUP_REL])


def _copy_other_run(ctx: Context) -> None:
    dst = ctx.input_dir / COPY_REL
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ctx.input_dir / DUP_REL, dst)  # same bytes and mtime, another run


def write_duplicate_source(ctx: Context) -> None:
    """Phase 1: the good image that the duplicate kinds of phase 2 repeat."""
    ctx.fed_before[DUP_REL] = noise_png(31)
    ctx.write(DUP_REL, ctx.fed_before[DUP_REL])


NON_UTF8 = os.fsdecode(_rel(1020, "").encode() + b"BI_good_\xff\xfe.png")
LONG_NAME = _rel(1021, "P" * 246 + ".png")  # a 250-character file name
LONG_PATH = _rel(1022, "/".join(["d" * 100] * 8) + "/BI_good.png")  # beyond 768 characters
DUP_REL = _rel(1031, f"{GOOD}.png")
COPY_REL = _rel(1032, f"{GOOD}.png")
assert len(LONG_NAME.rsplit("/", 1)[1]) == 250 and len(LONG_PATH) > 768


def _build() -> list[Kind]:
    def good(seed: int) -> Callable[[], bytes]:
        return lambda: noise_png(seed)

    kinds = [
        _simple("empty", "empty file", _rel(1001, "BI_good.png"), QUARANTINED, "empty", bytes),
        _simple(
            "truncated_png",
            "PNG cut off half-way",
            _rel(1002, "BI_good.png"),
            QUARANTINED,
            "truncated",
            lambda: noise_png(2)[: len(noise_png(2)) // 2],
        ),
        _simple(
            "text_named_png",
            "a text file named .png",
            _rel(1003, "BI_good.png"),
            QUARANTINED,
            "not_an_image",
            lambda: b"this is not an image\n" * 20,
        ),
        _simple(
            "jpeg_named_png",
            "a JPEG with a .png extension",
            _rel(1004, "BI_good.png"),
            QUARANTINED,
            "wrong_format",
            lambda: encode(Image.new("RGB", (40, 30), (9, 99, 199)), "JPEG"),
        ),
        _simple(
            "decompression_bomb",
            "100,000 x 100,000 px PNG header in a few hundred bytes",
            _rel(1005, "BI_good.png"),
            QUARANTINED,
            "decompression_bomb",
            bomb_png,
        ),
        _simple(
            "huge_image",
            "a real 8,000 x 7,000 px image (56 Mpx > HYDRA_MAX_PIXELS 50 Mpx)",
            _rel(1006, "BI_good.png"),
            QUARANTINED,
            "decompression_bomb",
            lambda: encode(Image.new("1", (8000, 7000)), "PNG"),
        ),
        _simple(
            "oversized_file",
            "a file over HYDRA_MAX_FILE_BYTES (a PNG padded to 3.1 MB)",
            _rel(1007, "BI_good.png"),
            QUARANTINED,
            "too_large",
            lambda: noise_png(7) + b"\x00" * 3_100_000,
            note="refused by size before it is read",
        ),
        _simple(
            "one_pixel",
            "a 1 x 1 px image",
            _rel(1008, "BI_good.png"),
            VERDICT,
            None,
            lambda: encode(Image.new("RGB", (1, 1), (250, 10, 10)), "PNG"),
            note="valid: the model resizes it to its input size",
        ),
        _simple(
            "sixteen_bit",
            "16-bit greyscale PNG",
            _rel(1009, "BI_good.png"),
            VERDICT,
            None,
            lambda: encode(
                Image.frombytes(
                    "I;16", (40, 30), bytes(random.Random(9).randrange(256) for _ in range(2400))
                ),
                "PNG",
            ),
            note="valid: decoded to 8-bit RGB in the model's graph",
        ),
        _simple(
            "palette",
            "palette (P mode) PNG",
            _rel(1010, "BI_good.png"),
            VERDICT,
            None,
            lambda: encode(Image.open(io.BytesIO(noise_png(10))).convert("P"), "PNG"),
            note="valid: expanded to RGB",
        ),
        _simple(
            "cmyk_jpeg",
            "CMYK JPEG (JPEG plot type)",
            _rel(1011, f"{JPEG_TYPE}.jpg"),
            VERDICT,
            None,
            lambda: encode(Image.new("CMYK", (40, 30), (10, 200, 30, 40)), "JPEG"),
            plot_type=JPEG_TYPE,
            note="valid: converted to RGB by the decoder",
        ),
        _simple(
            "alpha",
            "RGBA PNG with transparency",
            _rel(1012, "BI_good.png"),
            VERDICT,
            None,
            lambda: noise_png(12, mode="RGBA"),
            note="valid: the alpha channel is dropped",
        ),
        Kind(
            "still_being_written",
            "a file that grows for 2.5 s (25 appends), then is complete",
            _rel(1013, "BI_good.png"),
            VERDICT,
            None,
            _growing(_rel(1013, "BI_good.png")),
            note="read only once size and mtime held for HYDRA_STABLE_SECONDS; fed once",
        ),
        _simple(
            "no_convention",
            "a name that follows no convention (no extension)",
            _rel(1014, "README"),
            QUARANTINED,
            "bad_name",
            lambda: b"notes\n",
        ),
        _simple(
            "unknown_plot_type",
            "a plot type Hydra does not know",
            _rel(1015, "XYZ_not_a_plot.png"),
            SKIPPED,
            "unknown_plot_type",
            good(15),
            plot_type="XYZ_not_a_plot",
            note="fed later if the plot type is added",
        ),
        _simple(
            "ignored_plot_type",
            "a plot type marked ignored",
            _rel(1016, f"{IGNORED}.png"),
            SKIPPED,
            "ignored_plot_type",
            good(16),
            plot_type=IGNORED,
            note="fed later if the plot type is un-ignored",
        ),
        _simple(
            "negative_run_number",
            "run directory `Run-5`",
            f"{PERIOD}/Run-5/BI_good.png",
            VERDICT,
            None,
            good(17),
            note="the minus is a separator (as in `Run-0005`): run number 5; never negative",
        ),
        _simple(
            "enormous_run_number",
            "run number 2^64 + 1 (over int64)",
            _rel(2**64 + 1, "BI_good.png"),
            QUARANTINED,
            "bad_name",
            good(18),
            note="was: the order could not be built and its whole batch retried for ever",
        ),
        _simple(
            "enormous_chunk",
            "chunk number 99,999,999,999 (over int32)",
            _rel(1019, "BI_good_99999999999.png"),
            QUARANTINED,
            "bad_name",
            good(19),
            note="was: as above",
        ),
        _simple(
            "non_utf8_name",
            "file name with bytes that are not UTF-8 (b'\\xff\\xfe')",
            NON_UTF8,
            QUARANTINED,
            "bad_name",
            good(20),
            note="was: as above, and the quarantine note failed to write",
        ),
        _simple(
            "long_file_name",
            "a 250-character file name",
            LONG_NAME,
            QUARANTINED,
            "bad_name",
            good(21),
            note="a plot type name is at most 128 characters",
        ),
        _simple(
            "long_path",
            "a path over 768 characters (deep directories)",
            LONG_PATH,
            QUARANTINED,
            "bad_name",
            good(22),
            note="the ledger keeps paths up to 768 characters",
        ),
        _simple(
            "long_run_period",
            "a RunPeriod directory of 80 characters",
            f"RunPeriod-{'x' * 70}/Run1023/BI_good.png",
            QUARANTINED,
            "bad_name",
            good(23),
            note="was: fed, then the keeper's insert failed (run_period is 64 characters) "
            "and it retried that batch for ever",
        ),
        _simple(
            "wrong_extension_for_type",
            "a real JPEG named .jpg for a PNG plot type",
            _rel(1024, "BI_good.jpg"),
            QUARANTINED,
            "bad_name",
            lambda: encode(Image.new("RGB", (40, 30), (1, 2, 3)), "JPEG"),
        ),
        Kind(
            "symlink_outside",
            "a symlink to an image outside the input directory",
            _rel(1025, "BI_good.png"),
            QUARANTINED,
            "outside_input_dir",
            _symlink(_rel(1025, "BI_good.png")),
            note="the link is moved, its target is never read nor touched",
        ),
        Kind(
            "directory_named_like_image",
            "a directory named BI_good.png",
            _rel(1026, "BI_good.png"),
            NOT_A_FILE,
            None,
            _directory(_rel(1026, "BI_good.png")),
            note="only regular files are candidates",
        ),
        _simple(
            "hidden_file",
            "a hidden file (.BI_good.png, editors' and rsync's temporaries)",
            _rel(1027, ".BI_good.png"),
            NOT_A_FILE,
            None,
            good(27),
            note="names starting with a dot are never looked at",
        ),
        Kind(
            "deleted_before_read",
            "a file deleted 0.3 s after it appeared",
            _rel(1028, "BI_good.png"),
            FORGOTTEN,
            None,
            _deleted(_rel(1028, "BI_good.png")),
            note="dropped by the next rescan; if it goes between the stability check and the "
            "read it is counted as `vanished`",
        ),
        _simple(
            "model_missing",
            "plot type whose active model has no files on the model server",
            _rel(1029, f"{MISSING}.png"),
            ERROR_VERDICT,
            None,
            good(29),
            plot_type=MISSING,
            note="the predictor waits HYDRA_MODEL_SERVER_RETRY_SECONDS, then reports ERROR",
        ),
        _simple(
            "model_failing",
            "plot type whose model outputs 2 weights while the database lists 3 labels",
            _rel(1030, f"{FAILING}.png"),
            ERROR_VERDICT,
            None,
            good(30),
            plot_type=FAILING,
            note="the predictor reports ERROR with the shape mismatch",
        ),
        Kind(
            "duplicate_rewrite",
            "an image already fed, re-written at the same path with the same bytes",
            DUP_REL,
            FED_AGAIN,
            None,
            _rewrite_same,
            phase=2,
            note="a rewrite is a new observation (monitoring rewrites non-chunked plots in "
            "place): fed once more, exactly once",
        ),
        Kind(
            "duplicate_other_run",
            "a copy of an image already fed, under another run",
            COPY_REL,
            VERDICT,
            None,
            _copy_other_run,
            phase=2,
            note="another path is another image: fed once",
        ),
    ]
    names = [k.name for k in kinds]
    assert len(set(names)) == len(names)
    return kinds


KINDS: list[Kind] = _build()


def good_rel(i: int) -> str:
    """The i-th good image interleaved with the corpus (chunked BI_good)."""
    return _rel(900, f"{GOOD}_{i:04d}.png")


def expected_rejections() -> dict[str, int]:
    """hydra_feeder_rejected_total by reason once the corpus is through."""
    counts: dict[str, int] = {}
    for kind in KINDS:
        if kind.reason:
            counts[kind.reason] = counts.get(kind.reason, 0) + 1
    return counts
