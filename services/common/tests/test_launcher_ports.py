"""A local stack's ports: all distinct, all free, every time."""

from __future__ import annotations

import socket
from pathlib import Path

from hydra_common.launcher import SERVICES, Ports, free_ports


def test_free_ports_are_distinct_and_bindable() -> None:
    # Picking ports one at a time (bind, close, bind again) repeated a port in about 1 of 500
    # stacks; held sockets make a repeat impossible.
    for _ in range(500):
        ports = free_ports(9)
        assert len(set(ports)) == 9
    for port in free_ports(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # really free once returned


def test_a_stack_gets_one_port_per_server_and_metrics_endpoint() -> None:
    ports = Ports.free()
    assert set(ports.metrics) == {s for s in SERVICES if s != "api"}
    every = [ports.balancer, ports.keeper, ports.modelserver, ports.api, *ports.metrics.values()]
    assert len(set(every)) == len(every) == 4 + len(SERVICES) - 1


def test_a_local_stack_binds_to_loopback_and_keeps_its_data_private(tmp_path: Path) -> None:
    import os
    import stat

    from hydra_common.launcher import BIND_SETTINGS, private_data_dir, stack_environment

    env = stack_environment(Ports.free(), base={})
    assert {env[name] for name in BIND_SETTINGS} == {"127.0.0.1"}
    shared = stack_environment(Ports.free(), base={"HYDRA_BIND": "0.0.0.0"})
    assert {shared[name] for name in BIND_SETTINGS} == {"0.0.0.0"}

    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    (data / "hydra.db").write_text("")
    (data / "hydra.db").chmod(0o644)
    old = os.umask(0o022)
    try:
        private_data_dir(data)
        (data / "later.txt").write_text("made by a child of hydra up")
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "hydra.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "later.txt").stat().st_mode) == 0o600
