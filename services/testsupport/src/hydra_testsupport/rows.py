"""A test's look at the database: what its INSERT made, and the rows of a query."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from hydra_common.db.engine import make_engine


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an ``INSERT`` made (SQLAlchemy types it optional)."""
    key = result.inserted_primary_key
    if key is None:
        raise AssertionError("the INSERT returned no primary key")
    return int(key[0])


async def fetch_rows(url: str, query: str, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The rows of a SQL query, on an engine of its own (disposed of before returning)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(query), dict(params or {}))).all())
    finally:
        await engine.dispose()


def sql_rows(url: str, query: str, **params: Any) -> list[Any]:
    """``fetch_rows`` from synchronous code (a test with no running event loop)."""
    return asyncio.run(fetch_rows(url, query, params))
