"""The chart exposes retention: ``keeper.retention`` becomes the keeper's
``HYDRA_RETENTION_*`` settings (rendered with the real helm, read by the real settings)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hydra_keeper.settings import KeeperSettings

ROOT = Path(__file__).resolve().parents[1]


def _check_chart() -> ModuleType:
    name = "hydra_deploy_check_chart"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "check_chart.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _env(sets: list[str]) -> dict[str, str]:
    objects: list[dict[str, Any]] = _check_chart().helm_template(None, sets)
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
