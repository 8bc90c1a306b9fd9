"""Which ports are taken, and by what (``hydra up``'s check before it starts)."""

from __future__ import annotations

import os
import socket

from hydra_common.ports import PortUse, find_conflicts, free_ports, is_free, port_owners


def test_a_taken_port_is_named_with_its_setting_and_owner() -> None:
    taken_port, free_port = free_ports(2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken_port))
        listener.listen()
        assert not is_free("127.0.0.1", taken_port)
        assert not is_free("0.0.0.0", taken_port)  # all interfaces include loopback
        owners = port_owners(taken_port)
        assert [pid for pid, _ in owners] == [os.getpid()]
        conflicts = find_conflicts(
            [
                PortUse(taken_port, "127.0.0.1", "HYDRA_KEEPER_PORT", "keeper gRPC"),
                PortUse(free_port, "127.0.0.1", "HYDRA_API_PORT", "API HTTP"),
                PortUse(0, "127.0.0.1", "HYDRA_METRICS_PORT", "off"),
            ]
        )
    assert len(conflicts) == 1
    text = conflicts[0].describe()
    assert text.startswith(f"port {taken_port} on 127.0.0.1 (keeper gRPC,")
    assert "HYDRA_KEEPER_PORT" in text and f"pid {os.getpid()} (" in text
    assert is_free("127.0.0.1", taken_port)  # closed again


def test_one_port_named_twice_is_a_conflict() -> None:
    (port,) = free_ports(1)
    conflicts = find_conflicts(
        [
            PortUse(port, "127.0.0.1", "HYDRA_BALANCER_PORT", "balancer gRPC"),
            PortUse(port, "127.0.0.1", "HYDRA_FEEDER_METRICS_PORT", "feeder /metrics"),
        ]
    )
    assert [c.use.setting for c in conflicts] == ["HYDRA_FEEDER_METRICS_PORT"]
    assert "this stack's balancer gRPC (HYDRA_BALANCER_PORT)" in conflicts[0].describe()
