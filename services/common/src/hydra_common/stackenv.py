"""A local stack's ports and the environment its processes share.

Which services there are, which port each listens on and the settings that name them come
from the service registry (``hydra_common.plugins``), not from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hydra_common.plugins import ServiceDescriptor, env_name, services, stack_services
from hydra_common.ports import PortUse, free_ports

METRICS_HOST = "HYDRA_METRICS_HOST"


def _listening() -> list[ServiceDescriptor]:
    return [d for d in services().values() if d.runs_in_stack and d.listener is not None]


def _metered() -> list[ServiceDescriptor]:
    return [d for d in services().values() if d.runs_in_stack and d.metrics_port is not None]


@dataclass
class Ports:
    """The ports of one local stack: each server's (``ports.balancer``...) and each
    service's ``/metrics``."""

    servers: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        servers = self.__dict__.get("servers", {})
        if name in servers:
            return int(servers[name])
        raise AttributeError(f"no server {name!r} in this stack (servers: {', '.join(servers)})")

    @classmethod
    def free(cls) -> Ports:
        """Pick unused ports for everything (tests, benchmarks, drills)."""
        listening, metered = _listening(), _metered()
        picked = free_ports(len(listening) + len(metered))
        servers = {d.name: picked.pop(0) for d in listening}
        return cls(servers, {d.name: picked.pop(0) for d in metered})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """The ports ``hydra up`` uses: each service's setting, else its default."""
        servers = {}
        for d in _listening():
            assert d.listener is not None
            setting = env_name(d.listener.port_setting)
            servers[d.name] = int(env.get(setting) or d.default_port())
        metrics = {
            d.name: int(env.get(d.metrics_setting) or d.metrics_port or 0) for d in _metered()
        }
        return cls(servers, metrics)

    def uses(self, env: Mapping[str, str]) -> list[PortUse]:
        """Every port the stack listens on, with the host it binds and the setting naming it."""
        uses = []
        for d in _listening():
            listener = d.listener
            if listener is None or d.name not in self.servers:
                continue
            host = env.get(env_name(listener.host_setting), "0.0.0.0")
            setting = env_name(listener.port_setting)
            uses.append(PortUse(self.servers[d.name], host, setting, listener.what))
        metrics_host = env.get(METRICS_HOST, "0.0.0.0")
        for name, port in self.metrics.items():
            title = services()[name].title if name in services() else name
            setting = f"HYDRA_{name.upper()}_METRICS_PORT"
            uses.append(PortUse(port, metrics_host, setting, f"{title} /metrics"))
        return uses


def bind_settings() -> tuple[str, ...]:
    """The ``*_HOST`` variables of every listening service, and ``HYDRA_METRICS_HOST``."""
    hosts = [env_name(d.listener.host_setting) for d in _listening() if d.listener is not None]
    return (*sorted(hosts), METRICS_HOST)


EPICS_LOOPBACK = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
}


def stack_environment(ports: Ports, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every child of a local stack shares."""
    env = dict(os.environ if base is None else base)
    for d in _listening():
        listener = d.listener
        if listener is None or d.name not in ports.servers:
            continue
        port = ports.servers[d.name]
        env[env_name(listener.port_setting)] = str(port)
        if listener.address_setting:
            env[env_name(listener.address_setting)] = f"127.0.0.1:{port}"
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    # Local processes listen on loopback unless HYDRA_BIND says otherwise (gRPC has no
    # authentication: a hall that shares a laptop's stack puts a proxy or a firewall first).
    bind = env.get("HYDRA_BIND") or "127.0.0.1"
    for host in bind_settings():
        env.setdefault(host, bind)
    # Channel Access (the keeper's beam and status PVs) searches and beacons by UDP broadcast
    # unless told otherwise: a local stack keeps it on loopback, unless the hall set its own.
    for name, value in EPICS_LOOPBACK.items():
        env.setdefault(name, value)
    # The Status page reads the live figures of the services without a database heartbeat
    # (the balancer's queue depth above all) from their /metrics.
    probed = [name for name, d in services().items() if d.status_probe and name in ports.metrics]
    if probed and not env.get("HYDRA_STATUS_TARGETS"):
        env["HYDRA_STATUS_TARGETS"] = ",".join(
            f"{s}=http://127.0.0.1:{ports.metrics[s]}/metrics" for s in probed
        )
    return env


def hall_environment(
    ports: Ports, url: str, data_dir: Path, input_dir: Path, **extra: str
) -> dict[str, str]:
    """A test or drill stack's environment: its database and folders, quick rescans (1 s)
    and stability (0.2 s), INFO logs; ``extra`` settings override."""
    env = stack_environment(ports)
    env.update(
        HYDRA_DATABASE_URL=url,
        HYDRA_DATA_DIR=str(data_dir),
        HYDRA_INPUT_DIR=str(input_dir),
        HYDRA_RESCAN_SECONDS="1",
        HYDRA_STABLE_SECONDS="0.2",
        HYDRA_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


__all__ = ["Ports", "bind_settings", "hall_environment", "stack_environment", "stack_services"]
