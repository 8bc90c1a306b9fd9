"""Dialect-specific statements the keeper needs on both MySQL/MariaDB and SQLite."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def upsert(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    newer: str = "",
) -> None:
    """Insert rows, replacing every non-key column of rows whose key already exists.

    ``ON DUPLICATE KEY UPDATE`` on MySQL, ``ON CONFLICT DO UPDATE`` on SQLite, executed as
    an executemany of one cached statement (the MySQL driver sends it as one multi-row
    INSERT); ``insert().values([...])`` would compile a new statement per row count.
    With ``newer`` (a column), a stored row is replaced only by one whose ``newer`` is
    greater: a writer that raced another never puts an older row back.
    """
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c not in keys)
    stmt = _upsert_statement(conn.dialect.name, table, columns, tuple(keys), newer)
    await conn.execute(stmt, list(rows))


@functools.cache
def _upsert_statement(
    dialect: str, table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...], newer: str
) -> sa.Executable:
    """The upsert statement, built once per table and column set.

    Building it is costly (``inserted``/``excluded`` make a table alias and its column
    collection): about 4 ms per call, more than executing it for a batch of 32 rows.
    """
    if dialect == "mysql":
        my = mysql.insert(table)
        if not newer:
            return my.on_duplicate_key_update({c: my.inserted[c] for c in columns})
        # MySQL assigns left to right, each seeing the ones before: ``newer`` goes last.
        is_newer = my.inserted[newer] > table.c[newer]
        ordered = sorted(columns, key=lambda c: c == newer)
        return my.on_duplicate_key_update(
            [(c, sa.case((is_newer, my.inserted[c]), else_=table.c[c])) for c in ordered]
        )
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: lite.excluded[c] for c in columns},
        where=lite.excluded[newer] > table.c[newer] if newer else None,
    )


async def add_counts(
    conn: AsyncConnection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
) -> None:
    """Insert rows, or add their non-key columns to those of the row with the same key.

    For counters kept per key (``stage_hourly``): ``ON DUPLICATE KEY UPDATE c = c + new``
    on MySQL, ``ON CONFLICT DO UPDATE`` on SQLite; one executemany, as ``upsert``.
    """
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c not in keys)
    stmt = _add_statement(conn.dialect.name, table, columns, tuple(keys))
    await conn.execute(stmt, list(rows))


@functools.cache
def _add_statement(
    dialect: str, table: sa.Table, columns: tuple[str, ...], keys: tuple[str, ...]
) -> sa.Executable:
    if dialect == "mysql":
        my = mysql.insert(table)
        return my.on_duplicate_key_update({c: table.c[c] + my.inserted[c] for c in columns})
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + lite.excluded[c] for c in columns}
    )
