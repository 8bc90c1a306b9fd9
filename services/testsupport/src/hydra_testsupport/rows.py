"""A test's look at the database: what its INSERT made, the rows of a query, a transaction;
and an inference written with its monitoring-log row, as the keeper writes them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import MonitoringLog, RunHistory

T = TypeVar("T")


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


def in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work(session)`` in one transaction on an engine of its own, from synchronous code."""

    async def run() -> T:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def add_logged(session: AsyncSession, inference: RunHistory, **log: Any) -> MonitoringLog:
    """Add an inference and its monitoring-log row (plot type, run, chunk, verdict and
    confirmation copied from the inference; ``log`` sets the rest, such as ``transition``);
    the inference is flushed, the log row only added."""
    session.add(inference)
    await session.flush()
    row = MonitoringLog(
        run_history_id=inference.id,
        plot_type_id=inference.plot_type_id,
        run_number=inference.run_number,
        chunk=inference.chunk,
        verdict=inference.verdict,
        confirmed=inference.confirmed,
        **log,
    )
    session.add(row)
    return row
