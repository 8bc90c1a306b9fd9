"""The model server's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from hydra_common.settings import HydraSettings


class ModelServerSettings(HydraSettings):
    """Settings of the bundled model server: where it listens and how often it looks for models."""

    metrics_port: int = Field(
        9105, description="Port of the Prometheus `/metrics` endpoint (0: off)."
    )
    model_server_host: str = Field(
        "0.0.0.0", description="Address the model server's gRPC server binds."
    )
    model_server_port: int = Field(
        8500, description="Port of the model server's TF Serving gRPC API."
    )
    model_server_replicas: int = Field(
        1,
        ge=1,
        description=(
            "Model server processes `hydra up` runs (copy k on the port + k - 1); the "
            "predictors round-robin over them, so one restarting (a crash, TensorFlow's "
            "import, loading every model) does not stop the verdicts. In a cluster: the "
            "chart's `modelServer.replicas`."
        ),
    )
    model_poll_seconds: float = Field(
        2.0,
        gt=0,
        description=(
            "How often the model config file (or, without one, the model directory) is read "
            "for versions to load or unload."
        ),
    )
    max_image_pixels: int = Field(
        16_000_000,
        ge=1,
        description=(
            "Largest image (pixels, read from its header) a Predict request may carry; a "
            "larger one is refused with INVALID_ARGUMENT before it is decoded (a 7,000 x "
            "7,000 PNG takes 1.4 GB to decode). The feeder's limit of the same name "
            "quarantines such files first."
        ),
    )
    tf_intra_op_threads: int = Field(
        0,
        ge=0,
        description=(
            "Threads TensorFlow may use inside one op (TF Serving's "
            "`--tensorflow_intra_op_parallelism`; 0: TensorFlow's choice, one per core). "
            "1 suits many small models (concurrent requests run in parallel anyway): a "
            "small CNN's 1-image Predict then costs 2.9 ms of CPU instead of 3.4, but one "
            "big request uses one core (InceptionV3 through the pipeline: 6.8 -> 5.1 "
            "images/s on 2 cores)."
        ),
    )
    tf_inter_op_threads: int = Field(
        0,
        ge=0,
        description=(
            "Ops TensorFlow may run at once within one call (TF Serving's "
            "`--tensorflow_inter_op_parallelism`; 0: TensorFlow's choice, one per core)."
        ),
    )
