"""``make bench``: every benchmark in one run, a table against the goals, ``latest.json``.

    python -m bench.run                 # the production-shape parts (10 minutes on 2 cores)
    python -m bench.run --only model_quality   # model quality (about 80 minutes)
    python -m bench.run --quick         # smaller counts, a smoke run of every part
    python -m bench.run --only keeper,runpage

Each part is a module with ``measure(quick) -> dict`` and runs in its own process (a crash or
a leaked thread in one cannot spoil the next, and TensorFlow loaded by one does not weigh on
another's figures). The parts run one after another, never side by side: the machine is
small and shared, which is also why every goal is a ratio measured within one run or a cost
per item. Figures go to ``bench/results/latest.json`` and a dated copy (``quick.json`` for a
quick run), each with the
machine, versions and date; a part that fails is reported with its error, the others still
run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import operator
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import publish

PARTS = ("balancer", "keeper", "runpage", "pipeline", "model_quality")
# ``make bench``: the production-shape figures, within 10 minutes on 2 cores. Model quality
# (about 80 minutes) runs on its own: ``python -m bench.run --only model_quality``.
DEFAULT_PARTS = ("balancer", "keeper", "runpage", "pipeline")
MODULES = {
    "balancer": "bench.balancer_bench",
    "keeper": "bench.keeper_bench",
    "runpage": "bench.runpage_bench",
    "pipeline": "bench.pipeline_bench",
    "model_quality": "bench.model_quality",
}
BUDGET_S = 600  # the whole of ``make bench``


@dataclass(frozen=True)
class Goal:
    """A figure's goal: ``value <op> bound``."""

    key: str
    op: str
    bound: float
    unit: str
    what: str
    part: str

    def met(self, value: float) -> bool:
        """True when the value reaches the goal."""
        compare: Callable[[float, float], bool] = operator.le if self.op == "<=" else operator.ge
        return compare(value, self.bound)


GOALS = (
    Goal("balancer_us_per_order", "<=", 3, "µs", "balancer CPU/order, 64/msg, 4 KiB", "balancer"),
    Goal("balancer_vs_zmq", ">=", 3, "x", "legacy ZeroMQ+JSON µs/order ÷ ours", "balancer"),
    Goal("balancer_64k_vs_grpc_floor", "<=", 1.3, "x", "ours ÷ bare gRPC echo, 64 KiB", "balancer"),
    Goal("pipeline_efficiency_inceptionv3", ">=", 0.9, "", "pipeline ÷ models alone", "pipeline"),
    Goal("pipeline_efficiency_small", ">=", 0.6, "", "pipeline ÷ models alone", "pipeline"),
    Goal("burst_568_extra_s", "<=", 1.0, "s", "568-image burst beyond window+models", "pipeline"),
    Goal("keeper_reports_per_s", ">=", 5_000, "/s", "34-report commits, 10 % kept", "keeper"),
    Goal("keeper_vs_naive", ">=", 10, "x", "vs one commit per report", "keeper"),
    Goal("runpage_p95_s", "<=", 0.1, "s", "keeper commit → SSE event, p95", "runpage"),
    Goal("cpu_ms_per_image_overhead", "<=", 2, "ms", "all but TF, MariaDB included", "pipeline"),
    Goal("idle_cpu_ms_per_image", "<=", 3, "ms", "everything at 1 image/s", "pipeline"),
    Goal("bench_total_s", "<=", BUDGET_S, "s", "the whole of make bench", "run"),
    Goal("pointing_game_mean", ">=", 0.8, "", "Grad-CAM in the defect, V3", "model_quality"),
    Goal("pointing_game_min", ">=", 0.6, "", "the same, worst type", "model_quality"),
    Goal("pointing_game_mean_small", ">=", 0.8, "", "the same, small CNN", "model_quality"),
    Goal("pointing_game_foreign_small", ">=", 0.8, "", "matplotlib plots", "model_quality"),
    Goal("f1_bad_hard_min", "<=", 0.99, "", "hard simulator is not solved", "model_quality"),
    Goal(
        "train_peak_rss_ratio_10x", "<=", 1.3, "x", "hydra train RSS, 10x images", "model_quality"
    ),
)

_CHILD = """
import json, sys
from importlib import import_module
figures = import_module(sys.argv[1]).measure(quick=sys.argv[2] == "1")
with open(sys.argv[3], "w") as fh:
    json.dump(figures, fh)
"""


def run_part(part: str, quick: bool) -> tuple[dict[str, Any], str, float]:
    """Run one part in a child process; returns (figures, error, seconds)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, MODULES[part], "1" if quick else "0", str(out)],
            check=False,
        )
        seconds = time.monotonic() - started
        if proc.returncode != 0 or not out.exists():
            return {}, f"{MODULES[part]} exited with status {proc.returncode}", seconds
        return json.loads(out.read_text()), "", seconds


def table(figures: dict[str, Any], parts: list[str]) -> tuple[str, list[str]]:
    """The goals table of the parts run and the keys that missed their goal or are missing."""
    lines = [f"{'figure':34s} {'value (spread)':>18s}   {'goal':>12s}   ", "-" * 80]
    missed = []
    for g in GOALS:
        if g.part not in (*parts, "run"):
            continue
        value = figures.get(g.key)
        goal = f"{g.op} {g.bound:,g}{g.unit}"
        if not isinstance(value, int | float):
            lines.append(f"{g.key:34s} {'—':>18s}   {goal:>12s}   MISSING  {g.what}")
            missed.append(g.key)
            continue
        ok = g.met(value)
        if not ok:
            missed.append(g.key)
        shown = (f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}") + g.unit
        spread = figures.get(f"{g.key}_spread")
        if isinstance(spread, int | float):
            shown += f" (x{spread:.2f})"  # max/min over the runs
        verdict = "ok  " if ok else "MISS"
        lines.append(f"{g.key:34s} {shown:>18s}   {goal:>12s}   {verdict}  {g.what}")
    return "\n".join(lines), missed


def main() -> int:
    """Run the parts, print the table, write latest.json; 1 when a part failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated parts of {', '.join(PARTS)} (default: {', '.join(DEFAULT_PARTS)})",
    )
    args = parser.parse_args()
    parts = [p for p in args.only.split(",") if p] or list(DEFAULT_PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    started = time.monotonic()
    for part in parts:
        print(f"== {part} ({MODULES[part]})", flush=True)
        got, error, took = run_part(part, args.quick)
        figures.update(got)
        seconds[part] = round(took, 1)
        if error:
            errors[part] = error
            print(f"!! {part} failed: {error}", flush=True)
    figures["bench_seconds"] = seconds
    figures["bench_total_s"] = round(time.monotonic() - started, 1)
    figures["bench_quick"] = args.quick
    if errors:
        figures["bench_errors"] = errors
    text, missed = table(figures, parts)
    figures["goals_missed"] = [k for k in missed if k in figures]
    path = publish(figures, quick=args.quick)
    print()
    print(text)
    print(f"\n{figures['bench_total_s']:.0f} s in all; figures written to {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
