"""Recording benchmark figures with the machine, versions and date they were measured on."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and package versions."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("grpcio", "protobuf", "tensorflow", "sqlalchemy", "fastapi"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "python": sys.version.split()[0],
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def record(name: str, figures: dict[str, Any]) -> Path:
    """Write figures to results/<name>.json and merge them into results/latest.json."""
    RESULTS.mkdir(exist_ok=True)
    entry = {**figures, "machine": machine()}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    return path


def publish(all_figures: dict[str, Any], quick: bool = False) -> Path:
    """Write results/latest.json and a dated copy (a quick run: results/quick.json only)."""
    RESULTS.mkdir(exist_ok=True)
    entry = {**all_figures, "machine": machine()}
    text = json.dumps(entry, indent=2, sort_keys=True) + "\n"
    latest = RESULTS / ("quick.json" if quick else "latest.json")
    latest.write_text(text)
    if quick:
        return latest
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(text)
    return latest


def median_spread(key: str, samples: list[float], digits: int = 3) -> dict[str, float]:
    """``{key: median, key_spread: max/min}`` of a figure measured in several runs.

    The machine is small and shared: one run can land on a busy neighbour. The median of
    at least three runs is the figure; the spread says how far the runs were apart.
    """
    if not samples:
        raise ValueError(f"{key}: no samples")
    ordered = sorted(samples)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    low = ordered[0]
    spread = ordered[-1] / low if low > 0 else float("inf")
    return {key: round(median, digits), f"{key}_spread": round(spread, 3)}
