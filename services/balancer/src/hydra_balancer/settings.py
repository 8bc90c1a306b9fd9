"""The balancer's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from hydra_common.settings import HydraSettings


class BalancerSettings(HydraSettings):
    """Settings of the balancer: where it listens and how many orders it may hold."""

    balancer_host: str = Field("0.0.0.0", description="Address the balancer's gRPC server binds.")
    balancer_port: int = Field(50051, description="Port of the balancer's gRPC `BalancerService`.")
    queue_size: int = Field(
        10_000,
        ge=1,
        description=(
            "Most orders waiting for a predictor; feeders are pushed back while it is full."
        ),
    )
