"""``hydra model-config watch`` under ``run_service``: a real process that writes the file,
serves its metrics, and ends cleanly (exit 0) on SIGTERM."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from hydra_common.launcher import LocalStack, Ports, hall_environment, run_hydra
from hydra_testsupport import eventually


def _metrics(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = str(resp.read().decode())
    except OSError:
        return None
    return text if "hydra_modelconfig_last_success_timestamp_seconds " in text else None


def test_the_watcher_writes_serves_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    ports = Ports.free()
    url = f"sqlite+aiosqlite:///{tmp_path / 'hydra.db'}"
    env = hall_environment(
        ports, url, tmp_path, tmp_path / "input", HYDRA_MODEL_CONFIG_POLL_SECONDS="0.2"
    )
    run_hydra("db", "upgrade", env=env)
    stack = LocalStack(env, ports, tmp_path / "logs", services=("modelconfig",), restart=False)
    try:
        stack.start()  # writes the file once first (the registry's prepare step)
        assert (tmp_path / "models" / "models.config").is_file()
        text = eventually(lambda: _metrics(ports.metrics["modelconfig"]), within=120)
    finally:
        codes = stack.stop(30)
    assert "hydra_modelconfig_writes_total" in text
    assert codes == {"modelconfig": 0}, stack.log_tail("modelconfig")
    log = stack.log_path("modelconfig").read_text()
    assert "modelconfig ready" in log and "modelconfig stopping" in log
