"""The predictor's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

import os
import socket

from pydantic import Field

from hydra_common.settings import Duration, HydraSettings, PositiveDuration


def default_predictor_id() -> str:
    """Host name and process id: unique per replica, readable in the balancer's logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


class PredictorSettings(HydraSettings):
    """Settings of a predictor replica: whom it talks to and how it batches."""

    metrics_port: int = Field(
        9103, description="Port of the Prometheus `/metrics` endpoint (0: off)."
    )
    balancer_address: str = Field(
        "127.0.0.1:50051", description="gRPC address of the balancer (`BalancerService`)."
    )
    keeper_address: str = Field(
        "127.0.0.1:50052", description="gRPC address of the keeper (`KeeperService`)."
    )
    model_server_address: str = Field(
        "127.0.0.1:8500",
        description=(
            "gRPC address of TF Serving or the bundled model server; "
            "`dns:///name:8500` balances round robin over a headless Service's pods."
        ),
    )
    max_batch: int = Field(32, ge=1, description="Most images in one Predict call.")
    max_wait_ms: Duration = Field(
        20.0, description="Longest wait for a batch to fill before calling the model."
    )
    credits: int = Field(
        64, ge=1, description="Most orders this replica holds at once (credits to the balancer)."
    )
    model_refresh_seconds: PositiveDuration = Field(
        5.0,
        description="How often the active model of each plot type is re-read from the database.",
    )
    predict_timeout_seconds: PositiveDuration = Field(
        30.0, description="Deadline of one Predict call; past it the orders get ERROR."
    )
    model_server_retry_seconds: Duration = Field(
        60.0,
        description=(
            "How long a batch waits for an unreachable model server (UNAVAILABLE, or a model"
            " version not loaded yet) before its orders get ERROR reports."
        ),
    )
    report_batch_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1,
        description="Largest batch of reports (images included) sent to the keeper at once.",
    )
    predictor_id: str = Field(
        default_factory=default_predictor_id,
        description="Name of this replica in reports and logs (default: host name and pid).",
    )
