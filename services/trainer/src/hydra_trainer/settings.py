"""The trainer's settings (``HYDRA_`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from hydra_common.settings import HydraSettings


class TrainerSettings(HydraSettings):
    """Settings of ``hydra train`` and the other model commands."""

    trainer_user: str = Field(
        "", description="Who trains (recorded as `models.trained_by`); default: the OS user."
    )
    train_epochs: int = Field(
        50, description="Most epochs per training (early stopping ends sooner)."
    )
    train_batch_size: int = Field(16, description="Training batch size.")
    train_fraction: float = Field(0.95, description="Fraction of the training set used to fit.")
    train_seed: int = Field(0, description="Seed of sampling, splitting and initial weights.")
