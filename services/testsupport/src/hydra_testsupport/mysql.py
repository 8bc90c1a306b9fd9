"""Pytest fixtures and helpers for MySQL-backed tests (registered in the root conftest).

Tests that need MySQL use a real server at ``HYDRA_TEST_MYSQL_URL`` (default: the local
MariaDB). Each test session gets its own freshly migrated database. With ``CI=true`` a missing
server fails the tests; elsewhere they skip with a clear message.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade

DEFAULT_MYSQL = "mysql+asyncmy://root@127.0.0.1:3306/mysql"


def _server_url() -> str:
    return os.environ.get("HYDRA_TEST_MYSQL_URL", DEFAULT_MYSQL)


async def _admin(url: str, sql: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def create_mysql_database(prefix: str = "hydra_test") -> str:
    """Create and migrate a fresh database on the test server; returns its URL."""
    server = _server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(server, f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"MySQL test server at {server} is required in CI: {exc}") from exc
        pytest.skip(f"no MySQL server at {server} (set HYDRA_TEST_MYSQL_URL): {exc}")
    url = _with_database(server, name)
    upgrade(url)
    return url


def drop_mysql_database(url: str) -> None:
    """Drop a database made by create_mysql_database."""
    name = url.rpartition("/")[2]
    asyncio.run(_admin(_with_database(url, "mysql"), f"DROP DATABASE IF EXISTS {name}"))


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A migrated MariaDB/MySQL database shared by the test session."""
    url = create_mysql_database()
    yield url
    drop_mysql_database(url)


@pytest.fixture
def fresh_mysql_url() -> Iterator[str]:
    """A migrated MariaDB/MySQL database of this test's own."""
    url = create_mysql_database()
    yield url
    drop_mysql_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database in the test's temporary directory."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hydra.db'}"
    upgrade(url)
    return url


@pytest.fixture(autouse=True)
def _pillow_limit_restored() -> Iterator[None]:
    """The feeder sets Pillow's process-wide decompression-bomb limit from its settings; in
    one test process that limit must not leak from a feeder test into the next test."""
    try:
        from PIL import Image
    except ImportError:  # an image without Pillow: nothing to restore
        yield
        return
    saved = Image.MAX_IMAGE_PIXELS
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
