"""The keeper's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from hydra_keeper.retention import RetentionSettings


class KeeperSettings(RetentionSettings):
    """Settings of the keeper: where it listens, how it groups commits, when it alarms."""

    metrics_port: int = Field(
        9104, description="Port of the Prometheus `/metrics` endpoint (0: off)."
    )
    keeper_host: str = Field("0.0.0.0", description="Address the keeper's gRPC server binds.")
    keeper_port: int = Field(50052, description="Port of the keeper's gRPC `KeeperService`.")
    commit_max_batch: int = Field(
        256, ge=1, description="Most reports written in one database transaction."
    )
    commit_max_wait_ms: float = Field(
        20.0, ge=0, description="Longest wait for more reports before committing a batch."
    )
    keeper_queue_size: int = Field(
        10_000,
        ge=1,
        description="Reports held for the writer; streams stop reading when it is full.",
    )
    beam_current_threshold: float = Field(
        1.0,
        description=(
            "Beam current (nA) above which the beam counts as on; confirmed alarm verdicts "
            "raise alarms only while it is on, when run conditions are known."
        ),
    )
    alarm_command: str = Field(
        "",
        description="Command run for every alarm with the alarm as JSON on stdin (empty: none).",
    )
    keeper_refresh_seconds: float = Field(
        10.0, gt=0, description="How often thresholds, plot types and labels are re-read."
    )
    heartbeat_seconds: float = Field(
        10.0, gt=0, description="How often the keeper writes its `service_status` heartbeat."
    )
    default_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Threshold of a label that has none in the `thresholds` table.",
    )
