"""``hydra up``: the whole pipeline as local processes.

The embedded default (SQLite under ``HYDRA_DATA_DIR``, the bundled model server) runs every
service the registry (``hydra_common.plugins``) lists as a child process with one shared
environment, ``hydra model-config watch`` among them: it writes the model config file from
the database and the bundled model server loads what the file lists, the same contract as
TF Serving's in a cluster. ``hydra up`` first checks every port it will use; the supervisor
(``hydra_common.supervisor``) restarts a child that dies and gives up on one that
crash-loops; Ctrl-C or SIGTERM stops the services in the registry's stop order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import typer

from hydra_common import plugins
from hydra_common.ports import find_conflicts, free_port, free_ports
from hydra_common.settings import HydraSettings
from hydra_common.stackenv import Ports, bind_settings, hall_environment, stack_environment
from hydra_common.supervisor import (
    HYDRA_CLI,
    CrashPolicy,
    LocalStack,
    ServiceFailed,
    run_hydra,
)

# Re-exported: tests, benches and drills build their stacks from here.
__all__ = [
    "BIND_SETTINGS",
    "HYDRA_CLI",
    "SERVICES",
    "CrashPolicy",
    "LocalStack",
    "Ports",
    "ServiceFailed",
    "free_port",
    "free_ports",
    "hall_environment",
    "private_data_dir",
    "run_hydra",
    "serve",
    "stack_environment",
    "up",
]

# The services ``hydra up`` runs, in start order, and the variables that bind them.
SERVICES = plugins.stack_services()
BIND_SETTINGS = bind_settings()

# Started with ``hydra up`` beside the stack and stopped with it (the demo's simulator).
Prepare = Callable[[Mapping[str, str]], list[subprocess.Popen[bytes]]]


def serve(stack: LocalStack, extra: list[subprocess.Popen[bytes]], period: float = 0.5) -> int:
    """Supervise ``stack`` until SIGTERM/SIGINT (exit status 0) or until a service
    crash-loops (1, with the reason on stderr); the stack is stopped either way."""
    stop = threading.Event()

    def _on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    status = 0
    try:
        while not stop.is_set():
            try:
                stack.supervise_once()
            except ServiceFailed as exc:
                typer.echo(f"hydra up: {exc}", err=True)
                status = 1
                break
            stop.wait(period)
    finally:
        for p in extra:
            p.terminate()
        codes = stack.stop()
        typer.echo(f"stopped: {codes}")
    return status


def port_conflicts_message(ports: Ports, env: Mapping[str, str]) -> str | None:
    """Why ``hydra up`` cannot start on these ports (every taken one), or None."""
    conflicts = find_conflicts(ports.uses(env))
    if not conflicts:
        return None
    return "hydra up: cannot start:\n" + "\n".join(f"  - {c.describe()}" for c in conflicts)


def up(
    url_hint: bool = True,
    env_extra: Mapping[str, str] | None = None,
    prepare: Prepare | None = None,
) -> None:
    """Check the ports, migrate the database, run ``prepare`` (it may start helper processes),
    start every service and supervise until Ctrl-C/SIGTERM; exit non-zero when a port is
    taken or a service crash-loops. ``env_extra`` goes to the children only (a password
    never enters this process's ``os.environ``)."""
    settings = HydraSettings()
    private_data_dir(settings.data_dir)
    ports = Ports.from_env(os.environ)
    env = stack_environment(ports)
    env.update(env_extra or {})
    problem = port_conflicts_message(ports, env)
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    run_hydra("db", "upgrade", env=env)
    extra = prepare(env) if prepare else []
    stack = LocalStack(env, ports, settings.data_dir / "logs")
    try:
        stack.start(wait=300)
        stack.wait_ready()
    except Exception as exc:
        for p in extra:
            p.terminate()
        stack.stop(2)
        if isinstance(exc, ServiceFailed):
            typer.echo(f"hydra up: {exc}", err=True)
            raise typer.Exit(1) from None
        raise
    if url_hint:
        web = [
            port
            for name, port in ports.servers.items()
            if (listener := plugins.service(name).listener) and listener.protocol == "http"
        ]
        where = f"http://127.0.0.1:{web[0]}/" if web else "no web page"
        typer.echo(f"Hydra is up: {where}  (logs in {settings.data_dir / 'logs'})")
    status = serve(stack, extra)
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add ``hydra up``."""

    @app.command("up")
    def up_cmd() -> None:
        """Run every service and the bundled model server as local processes."""
        up()


def private_data_dir(data_dir: Path) -> None:
    """The data directory and what goes in it are the hall's alone: the database holds
    password hashes. Directories 0700, files 0600 (a umask every child inherits)."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for sqlite_file in data_dir.glob("*.db"):
        sqlite_file.chmod(0o600)
