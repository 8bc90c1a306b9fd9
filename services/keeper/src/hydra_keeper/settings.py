"""The keeper's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from hydra_common.beam import BeamSettings
from hydra_common.settings import Duration, Fraction, PositiveDuration
from hydra_keeper.drift import DriftSettings
from hydra_keeper.retention import RetentionSettings


class KeeperSettings(BeamSettings, RetentionSettings, DriftSettings):
    """Settings of the keeper: where it listens, how it groups commits, when it alarms.

    The beam and run-state settings (threshold, special run types, EPICS PVs) are
    ``BeamSettings``, shared with the API.
    """

    metrics_port: int = Field(
        9104, description="Port of the Prometheus `/metrics` endpoint (0: off)."
    )
    keeper_host: str = Field("0.0.0.0", description="Address the keeper's gRPC server binds.")
    keeper_port: int = Field(50052, description="Port of the keeper's gRPC `KeeperService`.")
    commit_max_batch: int = Field(
        256, ge=1, description="Most reports written in one database transaction."
    )
    commit_max_wait_ms: Duration = Field(
        20.0, description="Longest wait for more reports before committing a batch."
    )
    keeper_queue_size: int = Field(
        10_000,
        ge=1,
        description="Reports held for the writer; streams stop reading when it is full.",
    )
    alarm_bad_count: int = Field(
        2,
        ge=1,
        description=(
            "K: a plot type alarms when K of its last N images are confirmed alarm verdicts "
            "(Bad); it clears when none of its last N is."
        ),
    )
    alarm_window: int = Field(
        3, ge=1, le=50, description="N: how many of a plot type's latest images K counts in."
    )
    alarm_window_overrides: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description=(
            'K and N for some plot types, as JSON: `{"FCAL_occupancy": [3, 5]}` (the others '
            "use the two above)."
        ),
    )
    alarm_repeat_seconds: Duration = Field(
        300.0,
        description=(
            "Least time between two beeps of one raised, unacknowledged alarm "
            "(0: beep for every alarm verdict while raised)."
        ),
    )
    alarm_command: str = Field(
        "",
        description="Command run for every alarm with the alarm as JSON on stdin (empty: none).",
    )
    keeper_refresh_seconds: PositiveDuration = Field(
        10.0, description="How often thresholds, plot types and labels are re-read."
    )
    heartbeat_seconds: PositiveDuration = Field(
        10.0, description="How often the keeper writes its `service_status` heartbeat."
    )
    default_threshold: Fraction = Field(
        0.5,
        description="Threshold of a label that has none in the `thresholds` table.",
    )
    keep_margin_below: Fraction = Field(
        0.0,
        description=(
            "Also keep for labelling every image whose margin (top weight minus the "
            "runner-up's) is below this, as `uncertain` (0: off)."
        ),
    )
    mask_accept_fraction: float = Field(
        0.6,
        gt=0,
        le=1,
        description=(
            "A confirmed Bad whose Grad-CAM mass lies at least this much inside its plot "
            "type's masks in force (experts' accepted problems) is recorded `Accepted` and "
            "does not alarm."
        ),
    )
    epics_publish: bool = Field(
        False,
        description=(
            "Serve each plot type's verdict, confidence and alarm, and the hall's count of "
            "alarming plot types, as EPICS PVs (a Channel Access server in the keeper)."
        ),
    )
    epics_prefix: str = Field(
        "HYDRA:",
        max_length=40,
        description="Prefix of the published PV names (`<prefix><plot type>:VERDICT`...).",
    )
    epics_publish_seconds: PositiveDuration = Field(
        2.0, description="How often the published PVs are refreshed from the database."
    )
