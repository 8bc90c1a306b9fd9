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


def test_a_replicated_service_gets_a_port_per_copy_and_its_clients_dial_every_copy(
    tmp_path: Path,
) -> None:
    from hydra_common.launcher import LocalStack, stack_environment

    ports = Ports.free({"modelserver": 2})
    assert ports.instances("modelserver") == ["modelserver", "modelserver-2"]
    every = [*ports.servers.values(), *ports.metrics.values()]
    assert len(set(every)) == len(every)
    env = stack_environment(ports, base={})
    first, second = ports.servers["modelserver"], ports.servers["modelserver-2"]
    assert env["HYDRA_MODEL_SERVER_ADDRESS"] == f"ipv4:127.0.0.1:{first},127.0.0.1:{second}"
    assert env["HYDRA_MODEL_SERVER_REPLICAS"] == "2"
    assert env["HYDRA_STATUS_TARGETS"].count("modelserver=") == 2
    stack = LocalStack(env, ports, tmp_path)
    assert stack.services.count("modelserver-2") == 1
    assert stack.services.index("modelserver-2") < stack.services.index("predictor")
    # One copy: a plain address, as before.
    single = stack_environment(Ports.free(), base={})
    assert single["HYDRA_MODEL_SERVER_ADDRESS"].startswith("127.0.0.1:")


def test_hydra_up_places_copies_next_to_the_configured_ports() -> None:
    import pytest

    ports = Ports.from_env({"HYDRA_MODEL_SERVER_REPLICAS": "3", "HYDRA_MODEL_SERVER_PORT": "8600"})
    assert [ports.servers[i] for i in ports.instances("modelserver")] == [8600, 8601, 8602]
    assert ports.metrics["modelserver-3"] == ports.metrics["modelserver"] + 200
    uses = {u.port: u for u in ports.uses({})}
    assert "modelserver-2" in uses[8601].what and uses[8601].setting == "HYDRA_MODEL_SERVER_PORT"
    for bad in ("0", "two"):
        with pytest.raises(ValueError, match="HYDRA_MODEL_SERVER_REPLICAS"):
            Ports.from_env({"HYDRA_MODEL_SERVER_REPLICAS": bad})
