"""A local stack's ports: all distinct, all free, every time."""

from __future__ import annotations

import socket

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
