"""`helm test`: push one image through the pipeline and wait for the keeper's report.

Runs in the feeder's image (Python, no third-party import needed) with the input volume
mounted as the feeder sees it. Writes one small PNG named after a plot type of the hall, then
polls the keeper's /metrics until hydra_keeper_reports_total has grown. Exit 0 = end to end.
"""

import os
import struct
import sys
import time
import urllib.request
import zlib
from pathlib import Path


def png(width: int = 64, height: int = 64) -> bytes:
    """A grey gradient PNG, built with zlib alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes((x + y) % 256 for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def reports(url: str) -> float:
    """hydra_keeper_reports_total summed over the keeper's /metrics."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hydra_keeper_reports_total")
    )


def main() -> int:
    url = os.environ["HYDRA_TEST_KEEPER_METRICS"]
    deadline = time.monotonic() + float(os.environ["HYDRA_TEST_TIMEOUT_SECONDS"])
    before = reports(url)
    run_dir = Path(os.environ["HYDRA_INPUT_DIR"]) / os.environ["HYDRA_TEST_DIR"] / "Run999999"
    run_dir.mkdir(parents=True, exist_ok=True)
    chunk = int(time.time()) % 10000
    target = run_dir / f"{os.environ['HYDRA_TEST_PLOT_TYPE']}_{chunk:04d}.png"
    partial = target.with_suffix(".part")
    partial.write_bytes(png())
    partial.rename(target)  # the feeder sees the file complete at once
    print(f"wrote {target}; keeper reports before: {before:.0f}", flush=True)
    while time.monotonic() < deadline:
        now = reports(url)
        if now > before:
            print(f"keeper reports now {now:.0f}: the image went through", flush=True)
            return 0
        time.sleep(2)
    print("no report from the keeper before the deadline", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
