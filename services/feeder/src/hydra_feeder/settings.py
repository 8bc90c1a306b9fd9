"""The feeder's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from pydantic import Field, field_validator

from hydra_common.settings import Duration, HydraSettings, PositiveDuration


class FeederSettings(HydraSettings):
    """Settings of the feeder: what it watches, how it names and checks files, where it sends."""

    input_dir: Path | None = Field(
        None, description="Directory the monitoring writes plots into; default `$DATA_DIR/input`."
    )
    quarantine_dir: Path | None = Field(
        None,
        description="Where rejected files are moved, by reason; default `$DATA_DIR/quarantine`.",
    )
    balancer_address: str = Field("127.0.0.1:50051", description="gRPC address of the balancer.")
    file_pattern: str = Field(
        "",
        description=(
            "Regex matched against the whole path relative to the input dir, with named groups "
            "`plot_type` (required), `run_number`, `chunk`, `run_period`; empty = Hydra's "
            "convention."
        ),
    )
    rescan_seconds: PositiveDuration = Field(
        5.0,
        description=(
            "Period of the quick rescan (NFS gives no inotify events): only directories whose"
            " mtime changed are read again, so a new, renamed or removed file is found within"
            " this long even without events."
        ),
    )
    full_rescan_seconds: PositiveDuration = Field(
        60.0,
        description=(
            "Period of the full rescan, which stats every file: a file rewritten in place, or"
            " replaced by a rename over it, whose inotify event was missed (or on NFS) is found"
            " within this long plus `rescan_seconds`."
        ),
    )
    stable_seconds: Duration = Field(
        1.0,
        description=(
            "A file is read once its size and mtime held this long (at once if its mtime is"
            " already this much plus 2 s old when first seen)."
        ),
    )
    requeue_seconds: Duration = Field(
        600.0,
        description=(
            "How long a file quarantined as truncated or empty is watched: if its writer"
            " finishes it meanwhile, it is moved back and fed (0: never)."
        ),
    )
    max_file_age_days: Duration = Field(
        14.0,
        description=(
            "A file the ledger does not know whose mtime is older than this is left in place,"
            " not fed (`too_old`): keep it below the keeper's `HYDRA_RETENTION_LEDGER_DAYS`, so"
            " a file whose ledger row was pruned is never fed again (0: no limit)."
        ),
    )
    max_image_pixels: int = Field(
        16_000_000,
        ge=1,
        description=(
            "Largest plot (pixels, e.g. 4000 x 4000) fed; a larger image is quarantined as "
            "`too_large` (below `HYDRA_MAX_PIXELS`, the decompression-bomb guard)."
        ),
    )
    max_pixels: int = Field(
        50_000_000, ge=1, description="Largest image (pixels) accepted; more is a bomb."
    )
    max_file_bytes: int = Field(50_000_000, ge=1, description="Largest file (bytes) accepted.")
    feeder_window: int = Field(
        2_000, ge=1, description="Most orders fed and not yet done; the feeder waits beyond."
    )
    feeder_batch: int = Field(64, ge=1, description="Most orders in one message to the balancer.")
    feeder_refresh_seconds: PositiveDuration = Field(
        10.0, description="How often plot types are re-read from the database."
    )
    feeder_id: str = Field("", description="Name of this feeder in logs; default the host name.")

    @field_validator("file_pattern")
    @classmethod
    def _pattern_is_usable(cls, value: str) -> str:
        if value:
            compiled = re.compile(value)
            if "plot_type" not in compiled.groupindex:
                raise ValueError("HYDRA_FILE_PATTERN needs a named group (?P<plot_type>...)")
        return value

    @property
    def input_root(self) -> Path:
        """The watched directory, absolute."""
        return (self.input_dir or self.data_dir / "input").resolve()

    @property
    def quarantine_root(self) -> Path:
        """The quarantine directory, absolute."""
        return (self.quarantine_dir or self.data_dir / "quarantine").resolve()

    @property
    def name(self) -> str:
        """This feeder's name for the balancer's logs."""
        return self.feeder_id or socket.gethostname()
