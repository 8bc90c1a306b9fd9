"""``hydra up`` beside another stack, and a service that crash-loops.

Real processes throughout: the first stack is a real balancer and keeper (a whole stack with
the model server's TensorFlow would add nothing to what is checked), the second is the real
``hydra up`` command; the crash-looping service is the real balancer, whose port is taken.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hydra_common.launcher import (
    HYDRA_CLI,
    CrashPolicy,
    LocalStack,
    Ports,
    hall_environment,
    run_hydra,
    serve,
)


def _sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def first_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A running balancer and keeper of a first local stack."""
    data_dir = tmp_path / "first"
    ports = Ports.free()
    env = hall_environment(ports, _sqlite(data_dir / "hydra.db"), data_dir, data_dir / "input")
    data_dir.mkdir()
    run_hydra("db", "upgrade", env=env)
    stack = LocalStack(env, ports, data_dir / "logs", services=("balancer", "keeper"))
    try:
        stack.start()
        stack.wait_ready(timeout=120)
        yield stack
    finally:
        stack.stop(5)


def test_a_second_stack_on_the_same_ports_exits_non_zero_naming_the_port(
    first_stack: LocalStack, tmp_path: Path
) -> None:
    ports = first_stack.ports
    # The second stack is told the same ports as the first (its /metrics ports too).
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_") or k == "HYDRA_BIND"}
    env.update(
        HYDRA_DATA_DIR=str(tmp_path / "second"),
        HYDRA_BALANCER_PORT=str(ports.balancer),
        HYDRA_KEEPER_PORT=str(ports.keeper),
        HYDRA_MODEL_SERVER_PORT=str(ports.modelserver),
        HYDRA_API_PORT=str(ports.api),
        **{
            f"HYDRA_{service.upper()}_METRICS_PORT": str(port)
            for service, port in ports.metrics.items()
        },
    )
    second = subprocess.run(
        [sys.executable, *HYDRA_CLI, "up"], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode != 0, second
    assert "Hydra is up" not in second.stdout
    err = second.stderr
    balancer_pid = first_stack.procs["balancer"].pid
    keeper_pid = first_stack.procs["keeper"].pid
    assert f"port {ports.balancer} on 127.0.0.1" in err, err
    assert "HYDRA_BALANCER_PORT" in err and f"pid {balancer_pid} (" in err, err
    assert "hydra_balancer" in err, err
    assert f"port {ports.keeper} on 127.0.0.1" in err and f"pid {keeper_pid} (" in err, err
    assert f"port {ports.metrics['keeper']}" in err and "HYDRA_KEEPER_METRICS_PORT" in err, err
    # Only the taken ports are named, and the second stack started nothing.
    assert f"port {ports.api} " not in err and "HYDRA_API_PORT" not in err, err
    assert not (tmp_path / "second" / "logs").exists()
    # The first stack still runs, untouched.
    assert all(proc.poll() is None for proc in first_stack.procs.values())
    assert first_stack.restarts == {"balancer": 0, "keeper": 0}


def test_a_crash_looping_service_is_stopped_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = Ports.free()
    env = hall_environment(ports, _sqlite(tmp_path / "hydra.db"), tmp_path, tmp_path / "input")
    policy = CrashPolicy(limit=3, stable_seconds=60, backoff=0.05, backoff_cap=0.2)
    stack = LocalStack(env, ports, tmp_path / "logs", services=("balancer",), crash_policy=policy)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with socket.socket() as taken, contextlib.ExitStack() as restore:
        for sig, handler in handlers.items():
            restore.callback(signal.signal, sig, handler)
        taken.bind(("127.0.0.1", ports.balancer))
        taken.listen()
        stack.start()
        status = serve(stack, [], period=0.05)  # returns once the balancer is given up on

    assert status == 1
    assert set(stack.failed) == {"balancer"}
    assert stack.restarts["balancer"] == policy.limit - 1
    assert stack.procs["balancer"].poll() not in (None, 0)
    err = capsys.readouterr().err
    assert "hydra up: balancer exited 3 times in a row" in err, err
    assert f"127.0.0.1:{ports.balancer}" in err, err  # the log's tail says why


def test_crash_backoff_doubles_up_to_its_cap() -> None:
    policy = CrashPolicy(backoff=0.5, backoff_cap=8.0)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
