"""The feeder's ledger (``fed_files``) and its view of the plot types.

A file is written to the ledger as *pending*, with a new order id, before its order is sent,
and marked *done* when the balancer says the keeper has its report. So a restart re-sends
what is pending and never feeds a file twice (same path, size and mtime).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hydra_common.db.schema import FedFile, PlotType, utcnow
from hydra_common.logs import get_logger

log = get_logger(__name__)

_CHUNK = 500  # keeps IN (...) lists and executemany batches small on every backend
_fed = FedFile.__table__


@dataclass
class LedgerEntry:
    """One fed file: where it is, what it was when fed, and its order."""

    source_path: str
    file_size: int
    file_mtime_ns: int
    order_id: str
    state: str = "pending"


class PlotTypeInfo(NamedTuple):
    """What the feeder needs to know about a plot type.

    A tuple: every refresh makes one per plot type (hundreds) and compares the lot with the
    last set, in C; a frozen dataclass was half the refresh's CPU."""

    file_type: str
    ignored: bool


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class Ledger:
    """Reads and writes ``fed_files``."""

    def __init__(self, engine: AsyncEngine, write_errors: Counter | None = None) -> None:
        self.engine = engine
        self._write_errors = write_errors

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; a failed one (the database down or its volume full) is
        counted before it propagates: the caller retries, the alert rule watches the count."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except Exception:
            self._count_write_error()
            raise

    def _count_write_error(self) -> None:
        if self._write_errors is not None:
            self._write_errors.inc()

    async def lookup(self, paths: Sequence[str]) -> dict[str, LedgerEntry]:
        """The ledger's entries for these source paths (those it has)."""
        if not paths:
            return {}  # not even a connection's ping
        async with self.engine.connect() as conn:
            return await _lookup(conn, paths)

    async def record(self, entries: Sequence[LedgerEntry], known: Iterable[str]) -> set[str]:
        """Write new pending entries; paths in ``known`` (rewritten files) get the new size,
        mtime and order id. One transaction, one statement of each kind.

        The others are taken for new without a look first (the intake does so for files
        younger than the feeder, which cannot be in the ledger unless they left the folder and
        came back). When one is there after all, the insert fails whole and the ledger is asked:
        a path whose row has the entry's size and mtime was fed before and is left out; its
        path is returned, and its order must not be sent. The rest are written as above.
        """
        known_paths = set(known)
        fresh = [e for e in entries if e.source_path not in known_paths]
        again = [e for e in entries if e.source_path in known_paths]
        try:
            async with self.engine.begin() as conn:
                await _write(conn, fresh, again)
            return set()
        except sa.exc.IntegrityError:
            # A path taken for new is in the ledger: not a failed write (nothing to alert on).
            log.info("files taken for new are in the ledger", extra={"files": len(fresh)})
        except Exception:
            self._count_write_error()
            raise
        already: set[str] = set()
        async with self._writing() as conn:
            found = await _lookup(conn, [e.source_path for e in fresh])
            new = []
            for e in fresh:
                row = found.get(e.source_path)
                if row is None:
                    new.append(e)
                elif (row.file_size, row.file_mtime_ns) == (e.file_size, e.file_mtime_ns):
                    already.add(e.source_path)
                else:
                    again.append(e)
            await _write(conn, new, again)
        return already

    async def mark_done(self, order_ids: Sequence[str]) -> None:
        """Mark orders done (ids no longer in the ledger change nothing)."""
        if not order_ids:
            return
        now = utcnow()
        async with self._writing() as conn:
            for chunk in _chunks(order_ids):
                await conn.execute(
                    sa.update(_fed)
                    .where(_fed.c.order_id.in_(chunk))
                    .values(state="done", done_at=now)
                )

    async def pending(self) -> list[LedgerEntry]:
        """Every pending entry, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    _fed.c.source_path, _fed.c.file_size, _fed.c.file_mtime_ns, _fed.c.order_id
                )
                .where(_fed.c.state == "pending")
                .order_by(_fed.c.id)
            )
            return [LedgerEntry(p, s, m, o) for p, s, m, o in rows]

    async def plot_types(self) -> dict[str, PlotTypeInfo]:
        """Every plot type's file type and ignored flag, by name."""
        t = PlotType.__table__
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(t.c.name, t.c.file_type, t.c.ignored))
            return {name: PlotTypeInfo(ft or "png", bool(ig)) for name, ft, ig in rows}


async def _lookup(conn: AsyncConnection, paths: Sequence[str]) -> dict[str, LedgerEntry]:
    """The entries the ledger has for these paths, read on ``conn``."""
    found: dict[str, LedgerEntry] = {}
    columns = (_fed.c.source_path, _fed.c.file_size, _fed.c.file_mtime_ns, _fed.c.order_id)
    for chunk in _chunks(paths):
        rows = await conn.execute(
            sa.select(*columns, _fed.c.state).where(_fed.c.source_path.in_(chunk))
        )
        for path, size, mtime, order_id, state in rows:
            found[path] = LedgerEntry(path, size, mtime, order_id, state)
    return found


async def _write(
    conn: AsyncConnection, fresh: Sequence[LedgerEntry], again: Sequence[LedgerEntry]
) -> None:
    """Insert ``fresh`` as pending rows and point ``again``'s rows at their new orders."""
    now = utcnow()
    if fresh:
        await conn.execute(
            sa.insert(_fed),
            [
                {
                    "source_path": e.source_path,
                    "file_size": e.file_size,
                    "file_mtime_ns": e.file_mtime_ns,
                    "order_id": e.order_id,
                    "state": "pending",
                    "fed_at": now,
                }
                for e in fresh
            ],
        )
    if again:
        await conn.execute(
            sa.update(_fed)
            .where(_fed.c.source_path == sa.bindparam("b_path"))
            .values(
                file_size=sa.bindparam("b_size"),
                file_mtime_ns=sa.bindparam("b_mtime"),
                order_id=sa.bindparam("b_order"),
                state="pending",
                fed_at=now,
                done_at=None,
            ),
            [
                {
                    "b_path": e.source_path,
                    "b_size": e.file_size,
                    "b_mtime": e.file_mtime_ns,
                    "b_order": e.order_id,
                }
                for e in again
            ],
        )
