"""A whole local stack for a test: a database and data folder of its own, the services on
free ports, and everything stopped and removed afterwards.

Two steps, so a test can seed the database and the model repository between them, before
any service starts (the services then see a hall as it would be after an expert's work).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hydra_common.launcher import LocalStack, Ports, hall_environment
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database


@dataclass(frozen=True)
class Site:
    """Where a test's stack keeps its state: a MariaDB database and a data folder."""

    url: str
    data_dir: Path

    @property
    def input_dir(self) -> Path:
        """The folder the feeder watches."""
        return self.data_dir / "input"


@contextmanager
def scratch_site(database: str) -> Iterator[Site]:
    """A freshly migrated MariaDB database named after ``database`` and an empty data folder
    with its input folder; both removed afterwards."""
    url = create_mysql_database(database)
    data_dir = Path(tempfile.mkdtemp(prefix=f"{database.replace('_', '-')}-"))
    site = Site(url, data_dir)
    try:
        site.input_dir.mkdir()
        yield site
    finally:
        drop_mysql_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def running_stack(
    site: Site, services: Sequence[str], timeout: float, **env: str
) -> Iterator[LocalStack]:
    """``services`` on free ports over the site, once every server answers (``env``: settings
    on top of ``hall_environment``'s); stopped afterwards. Nothing restarts them: one that
    dies while the stack starts fails the test at once, naming its log."""
    ports = Ports.free()
    environment = hall_environment(ports, site.url, site.data_dir, site.input_dir, **env)
    stack = LocalStack(
        environment, ports, site.data_dir / "logs", services=tuple(services), restart=False
    )
    try:
        stack.start(wait=timeout)
        stack.wait_ready(timeout=timeout)
        yield stack
    finally:
        stack.stop(10)
