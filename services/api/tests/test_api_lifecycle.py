"""The API process under ``run_service``: it answers, and SIGTERM ends it cleanly (exit 0);
a taken port ends it at start-up with an error, not a hang. Real processes, SQLite."""

from __future__ import annotations

import socket
from pathlib import Path

from hydra_common.launcher import LocalStack, Ports, hall_environment, run_hydra


def _stack(tmp_path: Path, ports: Ports) -> LocalStack:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hydra.db'}"
    env = hall_environment(ports, url, tmp_path, tmp_path / "input")
    run_hydra("db", "upgrade", env=env)
    return LocalStack(env, ports, tmp_path / "logs", services=("api",), restart=False)


def test_the_api_serves_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    stack = _stack(tmp_path, Ports.free())
    try:
        stack.start()
        stack.wait_ready(timeout=120)  # /api/health answered 200
    finally:
        codes = stack.stop(30)
    assert codes == {"api": 0}, stack.log_tail("api")
    log = stack.log_path("api").read_text()
    assert "api ready" in log and "api stopping" in log


def test_the_api_on_a_taken_port_exits_with_an_error(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.api))
        taken.listen()
        stack = _stack(tmp_path, ports)
        stack.start()
        code = stack.procs["api"].wait(120)
    assert code != 0
    assert "address already in use" in stack.log_path("api").read_text().lower()
