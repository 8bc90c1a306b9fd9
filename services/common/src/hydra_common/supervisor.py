"""The supervisor of a local stack: Hydra's services as child processes.

Each service is started the way its registry entry says (``python -m <module>`` or a
``hydra`` command), servers before their clients; a child that dies is restarted with
backoff, the way Kubernetes restarts a pod, and one that crash-loops is given up on with its
log's tail. ``stop()`` stops the services in the registry's stop order (the feeder first, so
nothing new enters while the rest drains).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hydra_common import plugins
from hydra_common.plugins import ServiceDescriptor, env_name
from hydra_common.stackenv import Ports

log = logging.getLogger(__name__)

HYDRA_CLI = ("-c", "from hydra_common.cli import main; main()")


def run_hydra(*args: str, env: Mapping[str, str] | None = None) -> None:
    """Run a ``hydra`` sub-command in a child process; raise if it fails."""
    subprocess.run(
        [sys.executable, *HYDRA_CLI, *args],
        env=dict(env or os.environ),
        check=True,
    )


def _grpc_servers(names: tuple[str, ...]) -> set[str]:
    """The gRPC servers among ``names``: they start without waiting for each other."""
    found = set()
    for name in names:
        listener = plugins.service(name).listener
        if listener is not None and listener.protocol == "grpc":
            found.add(name)
    return found


def _servers(names: tuple[str, ...]) -> set[str]:
    """Every service among ``names`` that listens (and so is waited for until it answers)."""
    return {n for n in names if plugins.service(n).listener is not None}


class ServiceFailed(RuntimeError):
    """A service crash-looped: it kept exiting soon after each start, so it was stopped."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


@dataclass
class CrashPolicy:
    """When a dead child is started again, and when the supervisor gives up on it.

    An exit within ``stable_seconds`` of the start counts as one more crash in a row; a
    longer run resets the count. Each restart waits ``backoff`` doubled per crash in a row
    (up to ``backoff_cap``), as Kubernetes' CrashLoopBackOff does; after ``limit`` crashes in a
    row the service is given up on. A kill through ``LocalStack.kill`` (the drills' faults) is
    no crash: the service comes back at once.
    """

    limit: int = 5
    stable_seconds: float = 30.0
    backoff: float = 0.5
    backoff_cap: float = 8.0

    def delay(self, crashes: int) -> float:
        """Seconds to wait before restarting after ``crashes`` crashes in a row."""
        return float(min(self.backoff_cap, self.backoff * 2 ** max(0, crashes - 1)))


LOG_TAIL_LINES = 15


class LocalStack:
    """Hydra's services as supervised local processes."""

    def __init__(
        self,
        env: Mapping[str, str],
        ports: Ports,
        log_dir: Path,
        services: tuple[str, ...] | None = None,
        restart: bool = True,
        crash_policy: CrashPolicy | None = None,
    ) -> None:
        self.env = dict(env)
        self.ports = ports
        self.log_dir = log_dir
        self.services = (
            tuple(i for s in plugins.stack_services() for i in ports.instances(s))
            if services is None
            else services
        )
        self.restart = restart
        self.crash_policy = crash_policy or CrashPolicy()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.services, 0)
        self.crashes: dict[str, int] = dict.fromkeys(self.services, 0)
        self.failed: dict[str, str] = {}
        self._started_at: dict[str, float] = {}
        self._restart_at: dict[str, float] = {}
        self._killed: set[str] = set()
        self._stopping = False
        self._held: set[str] = set()
        # The drills supervise from a thread while the test kills and releases.
        self._lock = threading.RLock()

    def log_path(self, service: str) -> Path:
        """The file a service's output goes to."""
        return self.log_dir / f"{service}.log"

    def _spawn(self, service: str) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        listener = plugins.service(service).listener
        if listener is not None and service in self.ports.servers:
            env[env_name(listener.port_setting)] = str(self.ports.servers[service])
        if service in self.ports.metrics:
            env["HYDRA_METRICS_PORT"] = str(self.ports.metrics[service])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path(service), "ab")
        command = _command(plugins.service(service))
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.procs[service] = proc
        self._started_at[service] = time.monotonic()
        return proc

    def start(self, wait: float = 0.0) -> None:
        """Start every service; with ``wait``, clients start only once the servers answer.

        The model config file is written once before anything starts, so the model server
        loads exactly the versions the database names from its first scan."""
        for service in self.services:
            if plugins.service(service).prepare and service == plugins.instance_of(service):
                run_hydra(*plugins.service(service).prepare, env=self.env)
        grpc_servers = _grpc_servers(self.services)
        for service in self.services:
            first = service in grpc_servers or plugins.service(service).starts_first
            if wait and not first:
                self.wait_ready(wait, only=grpc_servers)
                wait = 0.0
            self._spawn(service)

    def wait_ready(self, timeout: float = 120.0, only: set[str] | None = None) -> None:
        """Block until every server answers (gRPC health, or the API's /api/health).

        Only a live child of this stack counts as ready (a server of another stack on the same
        port does not); children that die meanwhile are restarted under the crash policy, and
        one that crash-loops raises ``ServiceFailed``."""
        deadline = time.monotonic() + timeout
        wanted = only if only is not None else _servers(self.services)
        pending = [s for s in self.services if s in wanted]
        while pending:
            service = pending[0]
            proc = self.procs.get(service)
            alive = proc is not None and proc.poll() is None
            if proc is not None and not alive and not self.restart:
                raise RuntimeError(f"{service} exited with {proc.returncode}; see its log")
            if alive and ready(service, self.ports):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} not ready after {timeout:.0f}s")
            self.supervise_once()
            time.sleep(0.2)

    def supervise_once(self) -> None:
        """Restart children that died (unless stopping or held down on purpose), with backoff;
        raise ``ServiceFailed`` (once) for a child that crash-loops, and leave it stopped."""
        with self._lock:
            if self._stopping or not self.restart:
                return
            now = time.monotonic()
            for service, proc in list(self.procs.items()):
                if proc.poll() is None or service in self._held or service in self.failed:
                    continue
                if service in self._killed:  # a drill's fault, not a crash: back at once
                    self._killed.discard(service)
                    self._restart_at[service] = now
                elif service not in self._restart_at:
                    self._crashed(service, proc.returncode, now)
                if self._restart_at[service] <= now:
                    del self._restart_at[service]
                    self.restarts[service] += 1
                    self._spawn(service)

    def _crashed(self, service: str, code: int | None, now: float) -> None:
        policy = self.crash_policy
        ran = now - self._started_at.get(service, now)
        self.crashes[service] = 1 if ran >= policy.stable_seconds else self.crashes[service] + 1
        crashes = self.crashes[service]
        if crashes >= policy.limit:
            message = (
                f"{service} exited {crashes} times in a row, each within "
                f"{policy.stable_seconds:.0f}s of its start (last exit code {code}); "
                f"stopped restarting it. The end of {self.log_path(service)}:\n"
                + self.log_tail(service)
            )
            self.failed[service] = message
            log.error("service crash-looped; stopped", extra={"svc": service, "code": code})
            raise ServiceFailed(service, message)
        delay = policy.delay(crashes)
        self._restart_at[service] = now + delay
        log.warning(
            "service exited; restarting",
            extra={"svc": service, "code": code, "in_seconds": delay, "crashes": crashes},
        )

    def log_tail(self, service: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of a service's log."""
        try:
            text = self.log_path(service).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def kill(self, service: str, sig: int = signal.SIGKILL, hold: bool = False) -> None:
        """Send a signal to a service (fault drills); hold=True keeps it down until release.
        Without hold the supervisor starts it again at once (a kill is no crash)."""
        with self._lock:
            if hold:
                self._held.add(service)
            else:
                self._killed.add(service)
            proc = self.procs[service]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait()

    def release(self, service: str) -> None:
        """Start a held service again."""
        with self._lock:
            self._held.discard(service)
            self._killed.discard(service)
            self._spawn(service)

    def stop(self, grace: float = 15.0) -> dict[str, int | None]:
        """SIGTERM in pipeline order, SIGKILL after grace; returns the exit codes."""
        with self._lock:
            self._stopping = True
        codes: dict[str, int | None] = {}
        for service in sorted(self.procs, key=lambda s: plugins.service(s).stop_order):
            proc = self.procs[service]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            codes[service] = proc.returncode
        return codes


def _command(descriptor: ServiceDescriptor) -> list[str]:
    if descriptor.module:
        return [sys.executable, "-m", descriptor.module]
    if descriptor.command:
        return [sys.executable, *HYDRA_CLI, *descriptor.command]
    raise ValueError(f"{descriptor.name} does not run as a process")


def ready(service: str, ports: Ports) -> bool:
    """Whether a service (instance) of a stack answers: gRPC health SERVING, or the HTTP
    health path 200; True for one that listens on no port."""
    listener = plugins.service(service).listener
    port = ports.servers.get(service)
    if listener is None or port is None:
        return True
    if listener.protocol == "http":
        import urllib.request

        url = f"http://127.0.0.1:{port}{listener.health_path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False
    return asyncio.run(_grpc_serving(f"127.0.0.1:{port}"))


async def _grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(target) as ch:
        try:
            resp = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
