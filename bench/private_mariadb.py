"""A MariaDB server of the drill's own, which it may crash with SIGKILL.

The machine's MariaDB on 127.0.0.1:3306 is shared by every test and every engineer; a drill
never touches it. ``PrivateMariaDB`` initialises a data directory under a temporary folder
(``mariadb-install-db``), runs ``mariadbd`` on its own loopback port and socket, and can
kill it with SIGKILL and start it again on the same data: InnoDB's crash recovery, the fault
a power cut or an OOM kill causes, not a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import text

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_common.launcher import free_port

MARIADBD = "mariadbd"
INSTALL_DB = "mariadb-install-db"


def available() -> str:
    """Empty when a private server can run here; else why not."""
    missing = [tool for tool in (MARIADBD, INSTALL_DB) if shutil.which(tool) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return ""


class PrivateMariaDB:
    """One ``mariadbd`` with its own data directory, port and socket under ``root``."""

    def __init__(self, root: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.datadir = root / "data"
        self.extra_args = extra_args  # more mariadbd options (after the drill's defaults)
        self.socket = root / "mariadb.sock"
        self.pid_file = root / "mariadb.pid"
        self.log_file = root / "mariadb.err"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server_url(self) -> str:
        """SQLAlchemy URL of the server (its ``mysql`` schema)."""
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/mysql"

    def start(self, timeout: float = 120.0) -> None:
        """Initialise the data directory (first time only), start the server, wait for it."""
        # The system schema, not the folder: the folder may be a volume mounted beforehand.
        if not (self.datadir / "mysql").is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    INSTALL_DB,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--user={_user()}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                    *self.extra_args,  # the redo log's size, say, from the start
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
        if not self.port:
            self.port = free_port()
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    MARIADBD,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--user={_user()}",
                    f"--socket={self.socket}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    f"--pid-file={self.pid_file}",
                    f"--log-error={self.log_file}",
                    "--innodb-buffer-pool-size=64M",
                    "--max-connections=500",
                    "--skip-log-bin",
                    *self.extra_args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_answering(timeout)

    def answers(self) -> bool:
        """True when the server accepts a connection and a query."""
        if self.proc is None or self.proc.poll() is not None:
            return False

        async def ping() -> None:
            engine = make_engine(self.server_url)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            finally:
                await engine.dispose()

        try:
            asyncio.run(asyncio.wait_for(ping(), 5))
        except Exception:
            return False
        return True

    def wait_answering(self, timeout: float) -> None:
        """Block until the server answers; raise with its log's tail if it does not."""
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}: {self._tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mariadbd not answering after {timeout:.0f}s: {self._tail()}")
            time.sleep(0.2)

    def kill9(self, timeout: float = 120.0) -> float:
        """SIGKILL the server, start it again on the same data; returns the outage (s)."""
        assert self.proc is not None, "not started"
        started = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.start(timeout)
        return time.monotonic() - started

    def create_database(self, prefix: str = "hydra_drill") -> str:
        """A fresh, migrated database on this server; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{int(time.time())}"

        async def create() -> None:
            engine = make_engine(self.server_url, isolation_level="AUTOCOMMIT")
            try:
                async with engine.connect() as conn:
                    await conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            finally:
                await engine.dispose()

        asyncio.run(create())
        url = self.server_url.rpartition("/")[0] + f"/{name}"
        upgrade(url)
        return url

    def stop(self, grace: float = 30.0) -> None:
        """Shut the server down (SIGTERM, SIGKILL after ``grace``)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def crash_recoveries(self) -> int:
        """How many times the server's log says InnoDB recovered from a crash."""
        with contextlib.suppress(OSError):
            log = self.log_file.read_text(errors="replace")
            return log.count("Starting crash recovery")
        return 0

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-1500:]
        return "(no log)"


def _user() -> str:
    """The account mariadbd runs as: this one (root must be named explicitly)."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
