"""Run the whole pipeline as local processes: ``hydra up`` and ``hydra demo``.

The embedded default (SQLite under ``HYDRA_DATA_DIR``, the bundled model server) runs every
service as a child process with one shared environment, and ``hydra model-config watch`` as
one more: it writes the model config file from the database and the bundled model server
loads what the file lists, the same contract as TF Serving's in a cluster. A child that dies
is restarted with backoff, the way Kubernetes would restart a pod; Ctrl-C or SIGTERM stops
the services in pipeline order (feeder first, so nothing new enters while the rest drains).
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
from dataclasses import dataclass, field
from pathlib import Path

import typer

from hydra_common.ports import PortUse, find_conflicts, free_port, free_ports
from hydra_common.settings import HydraSettings

__all__ = ["free_port", "free_ports"]  # re-exported: tests and benches pick ports here

log = logging.getLogger(__name__)

# Start order: the model config writer (so the model server finds its file), servers, then
# their clients. Stop order is the reverse.
SERVICES = ("modelconfig", "modelserver", "keeper", "balancer", "predictor", "feeder", "api")
GRPC_SERVICES = {"modelserver", "keeper", "balancer"}
# Processes that are neither servers nor their clients: they start first, without waiting.
WRITERS = {"modelconfig"}
HYDRA_CLI = ("-c", "from hydra_common.cli import main; main()")
# How a service is run when it is not ``python -m hydra_<service>``.
COMMANDS = {"modelconfig": ("model-config", "watch")}


# Each service's /metrics port in ``hydra up`` (docs/contracts.md); HYDRA_<SERVICE>_METRICS_PORT
# moves one.
DEFAULT_METRICS_PORTS = {
    "feeder": 9101,
    "balancer": 9102,
    "predictor": 9103,
    "keeper": 9104,
    "modelserver": 9105,
    "modelconfig": 9106,
}


@dataclass
class Ports:
    """The ports of one local stack."""

    balancer: int = 50051
    keeper: int = 50052
    modelserver: int = 8500
    api: int = 8080
    metrics: dict[str, int] = field(default_factory=dict)

    @classmethod
    def free(cls) -> Ports:
        """Pick unused ports for everything (tests, benchmarks, drills)."""
        metered = [s for s in SERVICES if s != "api"]
        balancer, keeper, modelserver, api, *metrics = free_ports(4 + len(metered))
        return cls(balancer, keeper, modelserver, api, dict(zip(metered, metrics, strict=True)))

    def uses(self, env: Mapping[str, str]) -> list[PortUse]:
        """Every port the stack listens on, with the host it binds and the setting naming it."""
        metrics_host = env.get("HYDRA_METRICS_HOST", "0.0.0.0")
        uses = [
            PortUse(
                self.balancer,
                env.get("HYDRA_BALANCER_HOST", "0.0.0.0"),
                "HYDRA_BALANCER_PORT",
                "balancer gRPC",
            ),
            PortUse(
                self.keeper,
                env.get("HYDRA_KEEPER_HOST", "0.0.0.0"),
                "HYDRA_KEEPER_PORT",
                "keeper gRPC",
            ),
            PortUse(
                self.modelserver,
                env.get("HYDRA_MODEL_SERVER_HOST", "0.0.0.0"),
                "HYDRA_MODEL_SERVER_PORT",
                "model server gRPC",
            ),
            PortUse(
                self.api,
                env.get("HYDRA_API_HOST", "0.0.0.0"),
                "HYDRA_API_PORT",
                "API HTTP",
            ),
        ]
        for service, port in self.metrics.items():
            setting = f"HYDRA_{service.upper()}_METRICS_PORT"
            uses.append(PortUse(port, metrics_host, setting, f"{service} /metrics"))
        return uses


BIND_SETTINGS = (
    "HYDRA_API_HOST",
    "HYDRA_BALANCER_HOST",
    "HYDRA_KEEPER_HOST",
    "HYDRA_MODEL_SERVER_HOST",
    "HYDRA_METRICS_HOST",
)


def stack_environment(ports: Ports, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every child of a local stack shares."""
    env = dict(os.environ if base is None else base)
    env.update(
        HYDRA_BALANCER_PORT=str(ports.balancer),
        HYDRA_BALANCER_ADDRESS=f"127.0.0.1:{ports.balancer}",
        HYDRA_KEEPER_PORT=str(ports.keeper),
        HYDRA_KEEPER_ADDRESS=f"127.0.0.1:{ports.keeper}",
        HYDRA_MODEL_SERVER_PORT=str(ports.modelserver),
        HYDRA_MODEL_SERVER_ADDRESS=f"127.0.0.1:{ports.modelserver}",
        HYDRA_API_PORT=str(ports.api),
        PYTHONUNBUFFERED="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    # Local processes listen on loopback unless HYDRA_BIND says otherwise (gRPC has no
    # authentication: a hall that shares a laptop's stack puts a proxy or a firewall first).
    bind = env.get("HYDRA_BIND") or "127.0.0.1"
    for host in BIND_SETTINGS:
        env.setdefault(host, bind)
    # The Status page reads the live figures of the services without a database heartbeat
    # (the balancer's queue depth above all) from their /metrics.
    probed = [s for s in ("feeder", "balancer", "predictor", "modelserver") if s in ports.metrics]
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
        services: tuple[str, ...] = SERVICES,
        restart: bool = True,
        crash_policy: CrashPolicy | None = None,
    ) -> None:
        self.env = dict(env)
        self.ports = ports
        self.log_dir = log_dir
        self.services = services
        self.restart = restart
        self.crash_policy = crash_policy or CrashPolicy()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(services, 0)
        self.crashes: dict[str, int] = dict.fromkeys(services, 0)
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
        if service in self.ports.metrics:
            env["HYDRA_METRICS_PORT"] = str(self.ports.metrics[service])
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path(service), "ab")
        if service in COMMANDS:
            command = [sys.executable, *HYDRA_CLI, *COMMANDS[service]]
        else:
            command = [sys.executable, "-m", f"hydra_{service}"]
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
        if "modelconfig" in self.services:
            run_hydra("model-config", "write", env=self.env)
        for service in self.services:
            if wait and service not in GRPC_SERVICES | WRITERS:
                self.wait_ready(wait, only=GRPC_SERVICES)
                wait = 0.0
            self._spawn(service)

    def wait_ready(self, timeout: float = 120.0, only: set[str] | None = None) -> None:
        """Block until every server answers (gRPC health, or the API's /api/health).

        Only a live child of this stack counts as ready (a server of another stack on the same
        port does not); children that die meanwhile are restarted under the crash policy, and
        one that crash-loops raises ``ServiceFailed``."""
        deadline = time.monotonic() + timeout
        wanted = only if only is not None else GRPC_SERVICES | {"api"}
        pending = [s for s in self.services if s in wanted]
        while pending:
            service = pending[0]
            proc = self.procs.get(service)
            alive = proc is not None and proc.poll() is None
            if proc is not None and not alive and not self.restart:
                raise RuntimeError(f"{service} exited with {proc.returncode}; see its log")
            if alive and _ready(service, self.ports):
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
        order = ["feeder", "predictor", "balancer", "keeper", "modelserver", "api", "modelconfig"]
        codes: dict[str, int | None] = {}
        for service in [s for s in order if s in self.procs]:
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


def _ready(service: str, ports: Ports) -> bool:
    if service == "api":
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports.api}/api/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False
    port = {"balancer": ports.balancer, "keeper": ports.keeper, "modelserver": ports.modelserver}[
        service
    ]
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


def run_hydra(*args: str, env: Mapping[str, str] | None = None) -> None:
    """Run a ``hydra`` sub-command in a child process; raise if it fails."""
    subprocess.run(
        [sys.executable, *HYDRA_CLI, *args],
        env=dict(env or os.environ),
        check=True,
    )


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


def up(url_hint: bool = True, extra: list[subprocess.Popen[bytes]] | None = None) -> None:
    """Check the ports, migrate the database, start every service, supervise until
    Ctrl-C/SIGTERM; exit non-zero when a port is taken or a service crash-loops."""
    settings = HydraSettings()
    private_data_dir(settings.data_dir)
    ports = Ports(
        balancer=int(os.environ.get("HYDRA_BALANCER_PORT", 50051)),
        keeper=int(os.environ.get("HYDRA_KEEPER_PORT", 50052)),
        modelserver=int(os.environ.get("HYDRA_MODEL_SERVER_PORT", 8500)),
        api=int(os.environ.get("HYDRA_API_PORT", 8080)),
        metrics={
            service: int(os.environ.get(f"HYDRA_{service.upper()}_METRICS_PORT", default))
            for service, default in DEFAULT_METRICS_PORTS.items()
        },
    )
    env = stack_environment(ports)
    extra = extra or []
    problem = port_conflicts_message(ports, env)
    if problem:
        for p in extra:
            p.terminate()
        typer.echo(problem, err=True)
        raise typer.Exit(1)
    run_hydra("db", "upgrade", env=env)
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
        typer.echo(
            f"Hydra is up: http://127.0.0.1:{ports.api}/  (logs in {settings.data_dir / 'logs'})"
        )
    status = serve(stack, extra)
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add ``hydra up`` and ``hydra demo``."""

    @app.command("up")
    def up_cmd() -> None:
        """Run every service and the bundled model server as local processes."""
        up()

    @app.command("demo")
    def demo_cmd(
        interval: float = typer.Option(10.0, help="Seconds between simulated batches."),
    ) -> None:
        """Set up a demo hall, train models if none exist, run everything with simulated data."""
        settings = HydraSettings()
        private_data_dir(settings.data_dir)
        input_dir = Path(os.environ.get("HYDRA_INPUT_DIR", settings.data_dir / "input"))
        input_dir.mkdir(parents=True, exist_ok=True)
        os.environ["HYDRA_INPUT_DIR"] = str(input_dir)
        password = demo_admin_password(settings.data_dir)
        run_hydra("db", "upgrade")
        run_hydra("bootstrap-demo")
        sim = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from hydra_common.cli import main; main()",
                "simulate",
                "--hall",
                "demo",
                "--out",
                str(input_dir),
                "--interval",
                str(interval),
            ],
            start_new_session=True,
        )
        typer.echo(f"Log in as admin / {password}")
        up(extra=[sim])


def private_data_dir(data_dir: Path) -> None:
    """The data directory and what goes in it are the hall's alone: the database holds
    password hashes. Directories 0700, files 0600 (a umask every child inherits)."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for sqlite_file in data_dir.glob("*.db"):
        sqlite_file.chmod(0o600)


def demo_admin_password(data_dir: Path) -> str:
    """The demo's admin password: HYDRA_ADMIN_PASSWORD, else one made once and kept."""
    if os.environ.get("HYDRA_ADMIN_PASSWORD"):
        return os.environ["HYDRA_ADMIN_PASSWORD"]
    import secrets

    path = data_dir / "admin-password.txt"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    password = path.read_text().strip()
    os.environ["HYDRA_ADMIN_PASSWORD"] = password
    return password
