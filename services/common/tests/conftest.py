"""Fixtures of the shared library's tests: a migrated database on SQLite and on MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_common.db.engine import make_engine, make_sessionmaker


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database: SQLite of the test's own, or the session's MariaDB database."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``db_url`` (the engine is disposed of after the test)."""
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
