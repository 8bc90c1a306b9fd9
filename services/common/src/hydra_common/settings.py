"""Settings shared by every service: one base class, read from ``HYDRA_*`` variables.

Each service defines its own subclass next to its code (``FeederSettings``...), so a
service's settings are documented in one place and the README's table is generated from
them. Durations and fractions use the types below, so the rule on their range lives in one
place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# A time that must pass (a period, an interval, a timeout, a lifetime; the setting's name
# gives the unit): zero would make a loop spin or a thing expire at once, so it is refused
# at start-up.
PositiveDuration = Annotated[float, Field(gt=0)]
# A time or an age whose zero is a choice of its own (at once, off, or forever, as the
# setting's description says); only a negative one is refused.
Duration = Annotated[float, Field(ge=0)]
# A share or a probability: a threshold, a margin, a fraction of a whole.
Fraction = Annotated[float, Field(ge=0, le=1)]


class HydraSettings(BaseSettings):
    """Settings every Hydra service reads."""

    model_config = SettingsConfigDict(env_prefix="HYDRA_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="`production` refuses placeholder secrets."
    )
    hall: str = Field("demo", description="Name of the hall this deployment serves.")
    data_dir: Path = Field(Path("var"), description="Local state: SQLite file, storage, models.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default SQLite at `$HYDRA_DATA_DIR/hydra.db`."
    )
    storage_dir: Path | None = Field(
        None, description="Where kept images and heat maps live; default `$HYDRA_DATA_DIR/storage`."
    )
    model_dir: Path | None = Field(
        None,
        description="Model repository (TF Serving base path); default `$HYDRA_DATA_DIR/models`.",
    )
    model_config_file: Path | None = Field(
        None,
        description=(
            "TF Serving's model config file (`--model_config_file`), written from the database "
            "by `hydra model-config`; the bundled model server follows it when it exists. "
            "Default `<model dir>/models.config`."
        ),
    )
    model_base_path: str = Field(
        "",
        description=(
            "The model repository as the model server sees it (`base_path` prefix in the "
            "model config file); default the model directory."
        ),
    )
    model_config_poll_seconds: PositiveDuration = Field(
        10.0, description="How often `hydra model-config watch` re-reads the database."
    )
    model_prune_seconds: Duration = Field(
        86400.0,
        description=(
            "Grace period after which `hydra model-config watch` deletes version directories "
            "no longer listed (retired, failed or unknown ones)."
        ),
    )
    model_prune_keep: int = Field(
        3, ge=0, description="Newest versions per model name that are never pruned."
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_format: Literal["kv", "json"] = Field("kv", description="Structured log line format.")
    metrics_port: int = Field(0, description="Port of the Prometheus `/metrics` endpoint (0: off).")
    metrics_host: str = Field(
        "0.0.0.0", description="Address the `/metrics` and `/livez` endpoint binds."
    )
    bind: str = Field(
        "127.0.0.1",
        description=(
            "Address `hydra up` and `make demo` bind every service to (their `*_HOST` "
            "settings, which default to all interfaces for containers); `0.0.0.0` to share."
        ),
    )
    grace_seconds: float = Field(10.0, description="Graceful-shutdown grace period.")

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hydra.db').resolve()}"

    @property
    def storage_root(self) -> Path:
        """Root of stored images and heat maps."""
        return (self.storage_dir or self.data_dir / "storage").resolve()

    @property
    def model_root(self) -> Path:
        """Root of the model repository."""
        return (self.model_dir or self.data_dir / "models").resolve()

    @property
    def model_config_path(self) -> Path:
        """TF Serving's model config file (written by ``hydra model-config``)."""
        return (self.model_config_file or self.model_root / "models.config").resolve()
