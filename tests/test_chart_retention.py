"""The chart exposes retention: ``keeper.retention`` becomes the keeper's
``HYDRA_RETENTION_*`` settings (rendered with the real helm, read by the real settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy import check_chart as cc
from hydra_keeper.settings import KeeperSettings

ROOT = Path(__file__).resolve().parents[1]


def _env(sets: list[str]) -> dict[str, str]:
    objects: list[dict[str, Any]] = cc.helm_template(None, sets)
    [config] = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and "HYDRA_COMMIT_MAX_BATCH" in o.get("data", {})
    ]
    data: dict[str, str] = config["data"]
    return data


def test_retention_defaults_and_overrides_reach_the_keeper(monkeypatch: Any) -> None:
    defaults = _env([])
    assert defaults["HYDRA_RETENTION_LEDGER_DAYS"] == "30"
    assert defaults["HYDRA_RETENTION_RUN_HISTORY_DAYS"] == "180"
    env = _env(["keeper.retention.imagesDays=0", "keeper.retention.ledgerDays=45"])
    for name, value in env.items():
        if name.startswith("HYDRA_RETENTION_"):
            monkeypatch.setenv(name, value)
    settings = KeeperSettings()
    assert settings.retention_images_days == 0  # kept forever
    assert settings.retention_ledger_days == 45
    assert settings.retention_monitoring_log_days == 180
    assert settings.retention_interval_seconds == 3600
