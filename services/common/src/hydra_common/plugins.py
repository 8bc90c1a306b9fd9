"""The registry of Hydra's services, read from the ``hydra.services`` entry-point group.

Each service package declares one ``ServiceDescriptor`` in its ``pyproject.toml``::

    [project.entry-points."hydra.services"]
    myservice = "hydra_myservice.cli:SERVICE"

and says there what the rest of Hydra needs to know about it: its ``hydra`` commands, its
settings class, the port it listens on (and the setting that names it), its ``/metrics`` port
under ``hydra up``, how ``hydra up`` runs it and in which order, and what its container runs.
``hydra``, ``hydra up``, the README's settings table and the image recipe read this registry,
so the shared library names no service and adding one touches its own package only. A
package that is not installed (the feeder's image has no trainer) is simply not listed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import typer

    from hydra_common.settings import HydraSettings

GROUP = "hydra.services"


def env_name(setting: str) -> str:
    """A settings field's environment variable (``balancer_port``: ``HYDRA_BALANCER_PORT``)."""
    return f"HYDRA_{setting.upper()}"


@dataclass(frozen=True)
class Listener:
    """The port a service serves on, named by its settings fields."""

    port_setting: str
    host_setting: str
    what: str
    protocol: Literal["grpc", "http"] = "grpc"
    # The settings field its clients dial (``balancer_address``), filled in by ``hydra up``.
    address_setting: str | None = None
    # HTTP only: a path that answers 200 once the service is ready.
    health_path: str = ""


@dataclass(frozen=True)
class ServiceDescriptor:
    """What Hydra needs to know about one service package."""

    name: str
    title: str
    settings: type[HydraSettings] | None = None
    register_cli: Callable[[typer.Typer], None] | None = None
    # How ``hydra up`` runs it: ``python -m <module>``, or ``hydra <command...>``.
    module: str | None = None
    command: tuple[str, ...] = ()
    # A ``hydra`` command run once before the stack starts (the model config file).
    prepare: tuple[str, ...] = ()
    # Starts before the servers answer, without waiting for them (a writer they read).
    starts_first: bool = False
    listener: Listener | None = None
    # Its own ``/metrics`` port under ``hydra up`` (HYDRA_<NAME>_METRICS_PORT moves it).
    metrics_port: int | None = None
    # The API's Status page reads its live figures from its ``/metrics``.
    status_probe: bool = False
    # Start order under ``hydra up`` (and the order of listings); stop order.
    order: int = 100
    stop_order: int = 100
    # What its container image runs: ``hydra <image_command...>``.
    image_command: tuple[str, ...] = ()
    # The settings field that says how many copies of it ``hydra up`` runs (``None``: one).
    # Copy k (from 2) is the instance ``<name>-k``, on the listener's port + k - 1 and its
    # ``/metrics`` port + 100 (k - 1); the address its clients dial lists every copy.
    replicas_setting: str | None = None

    @property
    def runs_in_stack(self) -> bool:
        """Whether ``hydra up`` runs it as a process."""
        return bool(self.module or self.command)

    @property
    def metrics_setting(self) -> str:
        """The variable that moves its ``/metrics`` port under ``hydra up``."""
        return f"HYDRA_{self.name.upper()}_METRICS_PORT"

    def default_port(self) -> int:
        """The listener's port when its setting is not given (the settings class's default)."""
        if self.listener is None or self.settings is None:
            raise ValueError(f"{self.name} listens on no port")
        default = self.settings.model_fields[self.listener.port_setting].default
        return int(default)


@functools.cache
def services() -> dict[str, ServiceDescriptor]:
    """Every installed service, by name, in start order."""
    found: list[ServiceDescriptor] = []
    for entry in entry_points(group=GROUP):
        descriptor = entry.load()
        if not isinstance(descriptor, ServiceDescriptor):
            raise TypeError(
                f"entry point {entry.name} = {entry.value} in group {GROUP} is a "
                f"{type(descriptor).__name__}, not a ServiceDescriptor"
            )
        found.append(descriptor)
    found.sort(key=lambda d: (d.order, d.name))
    return {d.name: d for d in found}


def instance_of(name: str) -> str:
    """The service an instance of a local stack belongs to (``modelserver-2``:
    ``modelserver``); a service's own name for its first (or only) copy."""
    base, dash, number = name.rpartition("-")
    return base if dash and number.isdigit() else name


def instance_names(name: str, replicas: int) -> list[str]:
    """The instances of ``replicas`` copies of a service: ``name``, ``name-2``, ..."""
    return [name, *(f"{name}-{k}" for k in range(2, replicas + 1))]


def replica_counts(env: Mapping[str, str]) -> dict[str, int]:
    """How many copies of each service ``env`` asks for (only those with a replicas
    setting; an unset or empty one means 1)."""
    counts = {}
    for name, d in services().items():
        if d.replicas_setting:
            raw = env.get(env_name(d.replicas_setting)) or "1"
            try:
                count = int(raw)
            except ValueError:
                raise ValueError(
                    f"{env_name(d.replicas_setting)}={raw!r} is not a whole number"
                ) from None
            if count < 1:
                raise ValueError(f"{env_name(d.replicas_setting)} must be at least 1, not {count}")
            counts[name] = count
    return counts


def service(name: str) -> ServiceDescriptor:
    """One installed service (an instance name such as ``modelserver-2`` names its
    service); a clear error naming the installed ones otherwise."""
    known = services()
    name = instance_of(name)
    if name not in known:
        raise KeyError(f"no Hydra service {name!r} is installed (installed: {', '.join(known)})")
    return known[name]


def stack_services() -> tuple[str, ...]:
    """The services ``hydra up`` runs, in start order."""
    return tuple(name for name, d in services().items() if d.runs_in_stack)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hydra_common.plugins image-command SERVICE``: what the image runs (the
    Dockerfile asks); ``list``: the installed services; ``images``: those with an image."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["list"]:
        print("\n".join(services()))
        return 0
    if args[:1] == ["images"]:
        print("\n".join(name for name, d in services().items() if d.image_command))
        return 0
    if args[:1] == ["image-command"] and len(args) == 2:
        print(" ".join(service(args[1]).image_command))
        return 0
    print(
        "usage: python -m hydra_common.plugins list | images | image-command SERVICE",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    # The imported module, not this ``__main__`` copy: the descriptors are its classes' instances.
    from hydra_common.plugins import main as _main

    sys.exit(_main())
