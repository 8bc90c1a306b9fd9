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
    test_fraction: float = Field(
        0.15,
        description="Share of each label held out for the test figures (at least 20 images "
        "per label where the data allows).",
    )
    validation_fraction: float = Field(
        0.10,
        description="Share of each label for early stopping and thresholds (at least 30 "
        "images per label where the data allows).",
    )
    weights_dir: str = Field(
        "",
        description="Folder with Keras' ImageNet weight files for `--init imagenet` "
        "(searched before `~/.keras/models`); nothing is downloaded.",
    )
    train_seed: int = Field(0, description="Seed of sampling, splitting and initial weights.")
