"""From a report to a verdict: thresholds, confirmation, alarm, stage durations.

Pure functions on the hot path (thousands of reports a second), so they avoid anything
that allocates more than the row they produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hydra.v1 import order_pb2, report_pb2

from hydra_common.db.schema import InferenceStatus
from hydra_common.labels import ERROR, NO_MODEL

# A confirmed alarm verdict inside an expert's mask of an accepted problem (hydra_keeper.masks):
# recorded, kept and shown, but it neither alarms nor counts as Bad in the K-of-N window.
ACCEPTED = "Accepted"
# Weights arrive as float32; rounding them to 6 decimals makes 0.9f compare equal to a 0.90
# threshold, and is finer than any threshold (steps of 0.01).
WEIGHT_DIGITS = 6


@dataclass(slots=True)
class Judgement:
    """The keeper's reading of one report."""

    status: InferenceStatus
    verdict: str
    confidence: float
    confirmed: bool
    alarm_label: bool
    weights: dict[str, float]
    thresholds: dict[str, float]
    error: str = ""
    accepted_from: str = ""  # the model's verdict when a mask made it ACCEPTED

    @property
    def alarm(self) -> bool:
        """A confirmed verdict of an alarm label (Bad): logged, kept, and alarmed on."""
        return self.confirmed and self.alarm_label

    @property
    def model_verdict(self) -> str:
        """The model's own verdict (Bad for an ``Accepted`` one)."""
        return self.accepted_from or self.verdict

    @property
    def logged(self) -> bool:
        """Whether the monitoring log records it: unconfirmed or confirmed alarm verdicts."""
        return self.status is InferenceStatus.OK and (not self.confirmed or self.alarm_label)


def judge(
    report: report_pb2.Report,
    thresholds: Mapping[str, float],
    alarm_labels: frozenset[str] | set[str],
    default_threshold: float,
) -> Judgement:
    """Apply the model's thresholds to a report.

    The verdict is the label with the highest weight, the confidence that weight; the verdict
    is confirmed when the weight is at or above the label's threshold (``default_threshold``
    for a label without one). NO_MODEL reports read "NoModel", failed or malformed reports
    "Error"; neither is ever confirmed.
    """
    status = report.status
    if status == report_pb2.REPORT_STATUS_NO_MODEL:
        return Judgement(InferenceStatus.NO_MODEL, NO_MODEL, 0.0, False, False, {}, {})
    if status != report_pb2.REPORT_STATUS_OK:
        why = report.error or (
            "report status not set"
            if status == report_pb2.REPORT_STATUS_UNSPECIFIED
            else "prediction failed"
        )
        return Judgement(InferenceStatus.ERROR, ERROR, 0.0, False, False, {}, {}, why)
    labels = report.labels
    raw = report.weights
    if not labels or len(labels) != len(raw):
        why = f"malformed report: {len(labels)} labels, {len(raw)} weights"
        return Judgement(InferenceStatus.ERROR, ERROR, 0.0, False, False, {}, {}, why)
    weights = {label: round(w, WEIGHT_DIGITS) for label, w in zip(labels, raw, strict=True)}
    used = {label: thresholds.get(label, default_threshold) for label in weights}
    verdict = max(weights, key=weights.__getitem__)
    confidence = weights[verdict]
    return Judgement(
        InferenceStatus.OK,
        verdict,
        confidence,
        confidence >= used[verdict],
        verdict in alarm_labels,
        weights,
        used,
    )


# (stage name, stamp where it starts, stamp where it ends); "keep" ends at the commit.
_STAGES = (
    ("feed", "file_ns", "fed_ns"),
    ("queue", "fed_ns", "dispatched_ns"),
    ("dispatch", "dispatched_ns", "predict_start_ns"),
    ("predict", "predict_start_ns", "predict_end_ns"),
    ("report", "predict_end_ns", "reported_ns"),
)


def stage_seconds(stages: order_pb2.StageTimestamps, now_ns: int) -> dict[str, float]:
    """Seconds spent in each stage, from the order's stage timestamps.

    Consecutive stages (feed: file written → order created; queue: → dispatched by the
    balancer; dispatch: → model-server call started; predict: → call returned; report: →
    sent to the keeper; keep: → being committed) add up to ``total``. A stage whose
    timestamps are missing (0) is left out.
    """
    out: dict[str, float] = {}
    for name, start, end in _STAGES:
        t0 = getattr(stages, start)
        t1 = getattr(stages, end)
        if t0 and t1:
            out[name] = round((t1 - t0) / 1e9, 6)
    if stages.reported_ns:
        out["keep"] = round((now_ns - stages.reported_ns) / 1e9, 6)
    first = stages.file_ns or stages.fed_ns
    if first:
        out["total"] = round((now_ns - first) / 1e9, 6)
    return out
