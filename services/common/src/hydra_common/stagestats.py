"""Per-hour processing-time figures: what the Status page draws from, kept by the keeper.

Every inference's stage times (feed, queue, dispatch, predict, report, keep, total; see
the keeper's ``verdicts.stage_seconds``) fall into log-spaced bins. The keeper adds each
committed batch to ``stage_hourly`` (hour, run, stage, bin → count and seconds summed), so
the Status page reads a few thousand rows for any window instead of millions of inferences,
and its figures cover the whole window. ``INFERENCES`` counts every inference once (bin 0),
stage times or not: the per-hour throughput.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

# Stage times span 100 µs to minutes: log-spaced bin edges (seconds).
STAGE_EDGES = [0.0] + [round(10 ** (e / 4), 6) for e in range(-16, 9)]
INFERENCES = "_inferences"  # the pseudo-stage that counts inferences


def bin_index(seconds: float) -> int:
    """The bin of a stage time (the last bin is open-ended, negative times go to the first)."""
    return max(0, min(len(STAGE_EDGES) - 2, bisect.bisect_right(STAGE_EDGES, seconds) - 1))


def hour_of(t: datetime) -> datetime:
    """The start of t's hour."""
    return t.replace(minute=0, second=0, microsecond=0)


def hourly_rows(
    inferences: Iterable[tuple[datetime, int, Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """``stage_hourly`` increments for (created_at, run_number, stage seconds) inferences."""
    acc: dict[tuple[datetime, int, str, int], list[float]] = {}
    for created, run_number, stages in inferences:
        hour = hour_of(created)
        key = (hour, run_number, INFERENCES, 0)
        acc.setdefault(key, [0, 0.0])[0] += 1
        for stage, value in stages.items():
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                continue
            cell = acc.setdefault((hour, run_number, stage[:16], bin_index(seconds)), [0, 0.0])
            cell[0] += 1
            cell[1] += seconds
    return [
        {
            "hour": hour,
            "run_number": run,
            "stage": stage,
            "bin": b,
            "count": int(n),
            "seconds_sum": total,
        }
        for (hour, run, stage, b), (n, total) in acc.items()
    ]
