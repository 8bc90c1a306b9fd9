"""Local ports: picking free ones, and saying which are taken and by what.

``hydra up`` checks every port it is about to use before it starts anything, so a second
stack on the same machine stops at once with the port, the setting that names it and the
process that holds it, instead of crash-looping on "address already in use". The owner is
found the way ``ss -ltnp`` finds it: the listening socket's inode in ``/proc/net/tcp{,6}``,
then the process whose ``/proc/<pid>/fd`` links to that socket (only the caller's own
processes are visible to an unprivileged user; others are reported as unknown).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TCP_LISTEN = "0A"
CMDLINE_CHARS = 100


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct unused loopback ports: every socket stays bound until all are picked,
    so the kernel cannot hand the same port out twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass(frozen=True)
class PortUse:
    """A port a local stack is about to listen on, and the setting that names it."""

    port: int
    host: str
    setting: str
    what: str


@dataclass(frozen=True)
class PortConflict:
    """A port that is already taken, and by what."""

    use: PortUse
    held_by: str

    def describe(self) -> str:
        """One line: the port, what it is for, its setting, who holds it and what to do."""
        return (
            f"port {self.use.port} on {self.use.host} ({self.use.what}, {self.use.setting}) "
            f"is already in use by {self.held_by}; stop that or set {self.use.setting} "
            "to a free port"
        )


def is_free(host: str, port: int) -> bool:
    """True when a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind:
    connections in TIME_WAIT from a stack that just stopped do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _pids() -> Iterator[int]:
    with contextlib.suppress(OSError):
        for entry in os.scandir(PROC):
            if entry.name.isdigit():
                yield int(entry.name)


def _command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    words = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part).split()
    line = " ".join(words) or "?"
    return line if len(line) <= CMDLINE_CHARS else line[: CMDLINE_CHARS - 3] + "..."


def port_owners(port: int) -> list[tuple[int, str]]:
    """The processes (pid, command line) listening on TCP ``port``, as far as visible."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return []
    owners: list[tuple[int, str]] = []
    for pid in _pids():
        try:
            fds = os.listdir(PROC / str(pid) / "fd")
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                link = os.readlink(PROC / str(pid) / "fd" / fd)
            except OSError:
                continue
            if link in wanted:
                owners.append((pid, _command_line(pid)))
                break
    return owners


def find_conflicts(uses: Iterable[PortUse]) -> list[PortConflict]:
    """The ports among ``uses`` that are taken (a port listed twice is a conflict too)."""
    conflicts: list[PortConflict] = []
    seen: dict[int, PortUse] = {}
    for use in uses:
        if use.port == 0:  # an ephemeral port, or an endpoint that is off
            continue
        if use.port in seen:
            first = seen[use.port]
            conflicts.append(PortConflict(use, f"this stack's {first.what} ({first.setting})"))
            continue
        seen[use.port] = use
        if not is_free(use.host, use.port):
            owners = port_owners(use.port)
            held = ", ".join(f"pid {pid} ({cmd})" for pid, cmd in owners)
            conflicts.append(
                PortConflict(use, held or "another process (not visible to this user)")
            )
    return conflicts
