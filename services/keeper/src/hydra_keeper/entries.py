"""A batch's new reports on their way into the database (``Entry``), and what the batch's
steps decide about each: its transition and alarm (``transitions``, ``alarms``), whether it
is kept (``keeping``), its files (``files``) and its rows (``records``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hydra.v1 import report_pb2

from hydra_keeper.reference import PlotTypeInfo, ReferenceCache
from hydra_keeper.verdicts import Judgement, judge


@dataclass(slots=True)
class Entry:
    """One new report on its way into the database."""

    report: report_pb2.Report
    order_id: str
    plot_type: PlotTypeInfo
    model_id: int | None
    judgement: Judgement
    newest: bool = False
    transition_kind: str = ""
    alarm: bool = False  # beeps (raised, or repeated while raised)
    alarm_event: str = ""  # "raise" or "clear": the monitoring log records it
    candidate: bool = False
    kept: str = ""
    ext: str = "png"
    image_path: str | None = None
    heatmap_path: str | None = None
    live_image: str = ""
    live_heatmap: str | None = None


def new_entries(
    unique: Mapping[str, report_pb2.Report],
    existing: set[str],
    reference: ReferenceCache,
    default_threshold: float,
) -> list[Entry]:
    """The reports not recorded yet, judged, in order id order.

    The reference cache must already know every report's plot type (``ReferenceCache.ensure``).
    """
    alarm_labels = reference.alarm_labels
    entries = []
    for oid, r in unique.items():
        if oid in existing:
            continue
        thresholds = reference.model_thresholds(r.model_id) if r.model_id else None
        model_id = r.model_id if thresholds is not None else None
        j = judge(r, thresholds or {}, alarm_labels, default_threshold)
        entries.append(Entry(r, oid, reference.plot_types[r.order.plot_type], model_id, j))
    # Order ids are time-ordered: sorting replays the plot types' histories in order.
    entries.sort(key=lambda e: e.order_id)
    return entries
