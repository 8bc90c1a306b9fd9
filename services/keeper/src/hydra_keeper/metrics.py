"""The keeper's Prometheus metrics (names as in docs/contracts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hydra_common.labels import ERROR, NO_MODEL
from hydra_common.metrics import BATCH_BUCKETS, LATENCY_BUCKETS

if TYPE_CHECKING:
    from hydra_keeper.drift import DriftFigures

# The shared label set plus the keeper's own verdicts: bounded, so safe as a label value.
KNOWN_VERDICTS = (
    "Good",
    "Bad",
    "NoData",
    "Acceptable",
    "Cosmics",
    "HotChannel",
    "LED",
    "Amorphous",
    "Ignore",
    NO_MODEL,
    ERROR,
    "Accepted",
)
KEPT_REASONS = ("bad", "unconfirmed", "unbiased", "uncertain")
# What retention deletes, in the order one pass deletes it (the log refers to run history).
RETENTION_TABLES = ("monitoring_log", "run_history", "shadow_history", "fed_files", "plots")


class KeeperMetrics:
    """Every metric the keeper exports, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reports = Counter(
            "hydra_keeper_reports_total",
            "Reports committed (duplicates excluded).",
            registry=registry,
        )
        self.duplicates = Counter(
            "hydra_keeper_duplicates_total",
            "Reports whose order id was already recorded (acknowledged, nothing changed).",
            registry=registry,
        )
        self.verdicts = Counter(
            "hydra_keeper_verdicts_total",
            "Committed verdicts by label and confirmation.",
            ["verdict", "confirmed"],
            registry=registry,
        )
        self.alarms = Counter(
            "hydra_keeper_alarms_total",
            "Alarm beeps: alarms raised (K of N confirmed alarm verdicts, beam on) and their "
            "repeats while unacknowledged.",
            registry=registry,
        )
        self.alarm_events = Counter(
            "hydra_keeper_alarm_events_total",
            "Alarms raised and cleared, by event.",
            ["event"],
            registry=registry,
        )
        self.alarms_suppressed = Counter(
            "hydra_keeper_alarms_suppressed_total",
            "Confirmed alarm verdicts that did not count towards an alarm, by reason "
            "(beam_off, special_run, beam_unknown).",
            ["reason"],
            registry=registry,
        )
        for event in ("raise", "clear"):
            self.alarm_events.labels(event=event)
        for why in ("beam_off", "special_run", "beam_unknown"):
            self.alarms_suppressed.labels(reason=why)
        self.commit_batch_size = Histogram(
            "hydra_keeper_commit_batch_size",
            "Reports per database transaction.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.db_write_seconds = Histogram(
            "hydra_keeper_db_write_seconds",
            "Time to write and commit one batch (successful attempts).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.db_write_errors = Counter(
            "hydra_keeper_db_write_errors_total",
            "Failed batch writes (retried; nothing is acknowledged before it commits).",
            registry=registry,
        )
        self.images_kept = Counter(
            "hydra_keeper_images_kept_total",
            "Images kept for labelling, by reason.",
            ["reason"],
            registry=registry,
        )
        self.files_skipped = Counter(
            "hydra_keeper_files_skipped_total",
            "Images and heat maps not stored (verdict recorded all the same), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in ("disk_full", "io_error"):
            self.files_skipped.labels(reason=reason)
        self.last_commit = Gauge(
            "hydra_keeper_last_commit_timestamp_seconds",
            "Unix time of the last successful commit.",
            registry=registry,
        )
        self.beam_on = Gauge(
            "hydra_keeper_beam_on",
            "1 when the beam is on, 0 when off, -1 when no run conditions are known.",
            registry=registry,
        )
        self.beam_on.set(-1)
        for verdict in KNOWN_VERDICTS:
            for confirmed in ("true", "false"):
                self.verdicts.labels(verdict=verdict, confirmed=confirmed)
        for reason in KEPT_REASONS:
            self.images_kept.labels(reason=reason)


class RetentionMetrics:
    """The retention pass's Prometheus metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.removed = Counter(
            "hydra_keeper_retention_removed_total",
            "Rows deleted by retention, by table (plots: kept images).",
            ["table"],
            registry=registry,
        )
        self.files_removed = Counter(
            "hydra_keeper_retention_files_removed_total",
            "Image and heat-map files deleted by retention.",
            registry=registry,
        )
        self.errors = Counter(
            "hydra_keeper_retention_errors_total",
            "Retention passes that failed (retried at the next interval).",
            registry=registry,
        )
        self.last_run = Gauge(
            "hydra_keeper_retention_last_run_timestamp_seconds",
            "Unix time the last retention pass finished.",
            registry=registry,
        )
        for kind in RETENTION_TABLES:
            self.removed.labels(table=kind)


class DriftMetrics:
    """``hydra_keeper_drift_score`` and ``hydra_keeper_label_agreement`` per plot type."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.score = Gauge(
            "hydra_keeper_drift_score",
            "Drift of the active model: the larger PSI of its top weights and verdict mix "
            "over the trailing window against its test split.",
            ["plot_type"],
            registry=registry,
        )
        self.agreement = Gauge(
            "hydra_keeper_label_agreement",
            "Share of the window's labelled images whose expert label is the model's verdict.",
            ["plot_type"],
            registry=registry,
        )
        self.retrain = Gauge(
            "hydra_keeper_retrain_suggested",
            "1 when drift or disagreement suggests retraining the plot type's model.",
            ["plot_type"],
            registry=registry,
        )
        self._shown: set[str] = set()

    def show(self, figures: Sequence[DriftFigures]) -> None:
        """Set the series of these plot types; drop those of plot types no longer measured."""
        now = set()
        for f in figures:
            now.add(f.plot_type)
            for gauge, value in (
                (self.score, f.drift_score),
                (self.agreement, f.label_agreement),
                (self.retrain, float(f.retrain_suggested)),
            ):
                if value is None:
                    _remove(gauge, f.plot_type)
                else:
                    gauge.labels(plot_type=f.plot_type).set(value)
        for gone in self._shown - now:
            for gauge in (self.score, self.agreement, self.retrain):
                _remove(gauge, gone)
        self._shown = now


def _remove(gauge: Gauge, plot_type: str) -> None:
    try:
        gauge.remove(plot_type)
    except KeyError:
        pass
