"""A local stack's ports and the environment its processes share.

Which services there are, which port each listens on and the settings that name them come
from the service registry (``hydra_common.plugins``), not from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hydra_common.plugins import (
    ServiceDescriptor,
    env_name,
    instance_names,
    instance_of,
    replica_counts,
    services,
    stack_services,
)
from hydra_common.ports import PortUse, free_ports

METRICS_HOST = "HYDRA_METRICS_HOST"


def _listening() -> list[ServiceDescriptor]:
    return [d for d in services().values() if d.runs_in_stack and d.listener is not None]


def _metered() -> list[ServiceDescriptor]:
    return [d for d in services().values() if d.runs_in_stack and d.metrics_port is not None]


@dataclass
class Ports:
    """The ports of one local stack: each server's (``ports.balancer``...) and each
    service's ``/metrics``, by instance (``modelserver``, ``modelserver-2`` when the model
    server runs in two copies)."""

    servers: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        servers = self.__dict__.get("servers", {})
        if name in servers:
            return int(servers[name])
        raise AttributeError(f"no server {name!r} in this stack (servers: {', '.join(servers)})")

    @classmethod
    def free(cls, replicas: Mapping[str, int] | None = None) -> Ports:
        """Pick unused ports for everything (tests, benchmarks, drills); ``replicas`` runs
        more than one copy of a service (``{"modelserver": 2}``)."""
        counts = dict(replicas or {})
        listening = [i for d in _listening() for i in instance_names(d.name, counts.get(d.name, 1))]
        metered = [i for d in _metered() for i in instance_names(d.name, counts.get(d.name, 1))]
        picked = free_ports(len(listening) + len(metered))
        servers = {name: picked.pop(0) for name in listening}
        return cls(servers, {name: picked.pop(0) for name in metered})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """The ports ``hydra up`` uses: each service's setting, else its default; copy k of
        a replicated service on the port + k - 1 and the ``/metrics`` port + 100 (k - 1)."""
        counts = replica_counts(env)
        servers = {}
        for d in _listening():
            assert d.listener is not None
            setting = env_name(d.listener.port_setting)
            first = int(env.get(setting) or d.default_port())
            for k, name in enumerate(instance_names(d.name, counts.get(d.name, 1))):
                servers[name] = first + k
        metrics = {}
        for d in _metered():
            first = int(env.get(d.metrics_setting) or d.metrics_port or 0)
            for k, name in enumerate(instance_names(d.name, counts.get(d.name, 1))):
                metrics[name] = first + 100 * k if first else 0
        return cls(servers, metrics)

    def instances(self, service: str) -> list[str]:
        """The instances of ``service`` in this stack, first copy first (the service's own
        name alone when it has no port here)."""
        names = [n for n in {**self.servers, **self.metrics} if instance_of(n) == service]
        return names or [service]

    def uses(self, env: Mapping[str, str]) -> list[PortUse]:
        """Every port the stack listens on, with the host it binds and the setting naming it."""
        uses = []
        for name, port in self.servers.items():
            listener = services()[instance_of(name)].listener
            if listener is None:
                continue
            host = env.get(env_name(listener.host_setting), "0.0.0.0")
            setting = env_name(listener.port_setting)
            what = listener.what if name == instance_of(name) else f"{listener.what} ({name})"
            uses.append(PortUse(port, host, setting, what))
        metrics_host = env.get(METRICS_HOST, "0.0.0.0")
        for name, port in self.metrics.items():
            base = instance_of(name)
            title = services()[base].title if base in services() else base
            if name != base:
                title = f"{title} ({name})"
            setting = f"HYDRA_{base.upper()}_METRICS_PORT"
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
        copies = [ports.servers[i] for i in ports.instances(d.name) if i in ports.servers]
        env[env_name(listener.port_setting)] = str(copies[0])
        if d.replicas_setting:
            env[env_name(d.replicas_setting)] = str(len(copies))
        if listener.address_setting:
            # One copy: its address; several: gRPC's list of them, which a round-robin
            # channel (the predictor's to the model servers) spreads calls over.
            env[env_name(listener.address_setting)] = (
                f"127.0.0.1:{copies[0]}"
                if len(copies) == 1
                else "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in copies)
            )
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
    probed = [name for name in ports.metrics if services()[instance_of(name)].status_probe]
    if probed and not env.get("HYDRA_STATUS_TARGETS"):
        env["HYDRA_STATUS_TARGETS"] = ",".join(
            f"{instance_of(s)}=http://127.0.0.1:{ports.metrics[s]}/metrics" for s in probed
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
