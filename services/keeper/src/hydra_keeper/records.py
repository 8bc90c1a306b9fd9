"""The batch's rows: which reports are recorded already, and the inserts of a new batch
(plots, run_history, stage_hourly, run_verdicts, monitoring_log, run_time), in the caller's
transaction.

A fixed number of statements per batch whatever its size; lookups by order id go in chunks
of ``IN_CHUNK``. The new rows' ids come back from their INSERT (``RETURNING``, which
MariaDB and SQLite have), not from a second look-up; on MySQL, which has no RETURNING, they
are read back by order id in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import (
    MonitoringLog,
    Plot,
    RunHistory,
    RunTime,
    RunVerdictCount,
    StageHourly,
    utcnow,
)
from hydra_common.stagestats import hourly_rows
from hydra_keeper.dbutil import add_counts, upsert
from hydra_keeper.entries import Entry
from hydra_keeper.verdicts import stage_seconds

run_history_t = RunHistory.__table__
run_time_t = RunTime.__table__
monitoring_log_t = MonitoringLog.__table__
plots_t = Plot.__table__
stage_hourly_t = StageHourly.__table__
run_verdicts_t = RunVerdictCount.__table__

# SQL engines cap bound parameters per statement; lookups by id go in chunks this size.
IN_CHUNK = 500

# Built once: a statement built per batch costs more CPU than a one-report batch's rows.
_insert_plots_returning = sa.insert(plots_t).returning(plots_t.c.order_id, plots_t.c.id)
_insert_history_returning = sa.insert(run_history_t).returning(
    run_history_t.c.order_id, run_history_t.c.id
)
_recorded = sa.select(run_history_t.c.order_id).where(
    run_history_t.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)

T = TypeVar("T")


def in_chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    """``items`` in slices of at most ``IN_CHUNK``."""
    for i in range(0, len(items), IN_CHUNK):
        yield items[i : i + IN_CHUNK]


async def existing(conn: AsyncConnection, order_ids: Sequence[str]) -> set[str]:
    """Which of these order ids run_history holds already (a replay records nothing)."""
    found: set[str] = set()
    for part in in_chunks(order_ids):
        rows = await conn.execute(_recorded, {"order_ids": list(part)})
        found.update(rows.scalars())
    return found


async def insert(conn: AsyncConnection, entries: Sequence[Entry], now: datetime) -> None:
    """Insert a batch's rows: plots of the kept images, run_history, the stage times'
    hourly figures, the verdicts per run, the monitoring log, and run_time for each plot
    type's newest entry."""
    now_ns = int(now.timestamp() * 1e9)
    plot_ids = await _insert_plots(conn, entries)
    history, history_ids = await _insert_history(conn, entries, plot_ids, now, now_ns)
    await _add_stage_hours(conn, history)
    await add_run_verdicts(conn, Counter((r["run_number"], r["verdict"]) for r in history))
    await _insert_log(conn, entries, history_ids, now)
    await _upsert_run_time(conn, entries, history_ids, now)


async def _insert_plots(conn: AsyncConnection, entries: Sequence[Entry]) -> dict[str, int]:
    kept = [e for e in entries if e.kept and e.image_path]
    if not kept:
        return {}
    rows = []
    for e in kept:
        order = e.report.order
        rows.append(
            {
                "plot_type_id": e.plot_type.id,
                "run_period": order.run_period,
                "run_number": order.run_number,
                "chunk": order.chunk,
                "image_path": e.image_path,
                "heatmap_path": e.heatmap_path,
                "order_id": e.order_id,
                "kept_reason": e.kept,
                "source_path": order.source_path[:1024],
                "file_time": _file_time(order.stages.file_ns),
                "created_at": utcnow(),
            }
        )
    return await _insert_ids(conn, plots_t, _insert_plots_returning, rows)


async def _insert_history(
    conn: AsyncConnection,
    entries: Sequence[Entry],
    plot_ids: dict[str, int],
    now: datetime,
    now_ns: int,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Insert the run_history rows; returns them, and their ids by order id."""
    rows = []
    for e in entries:
        order = e.report.order
        j = e.judgement
        rows.append(
            {
                "order_id": e.order_id,
                "plot_type_id": e.plot_type.id,
                "run_period": order.run_period,
                "run_number": order.run_number,
                "chunk": order.chunk,
                "status": j.status,
                "model_id": e.model_id,
                "verdict": j.verdict,
                "confidence": j.confidence,
                "confirmed": j.confirmed,
                "weights": j.weights,
                "thresholds": j.thresholds,
                "stage_seconds": stage_seconds(order.stages, now_ns),
                "error": j.error[:1024],
                "source_path": order.source_path[:1024],
                "plot_id": plot_ids.get(e.order_id),
                "predictor_id": e.report.predictor_id[:128],
                "file_time": _file_time(order.stages.file_ns),
                "created_at": now,
            }
        )
    return rows, await _insert_ids(conn, run_history_t, _insert_history_returning, rows)


async def _insert_ids(
    conn: AsyncConnection,
    table: sa.Table,
    returning: sa.Insert,
    rows: list[dict[str, Any]],
) -> dict[str, int]:
    """Insert ``rows``; the new ids by order id."""
    if conn.dialect.insert_returning:
        return {oid: rid for oid, rid in await conn.execute(returning, rows)}
    # MySQL (a hall's own server; MariaDB 10.5+ and SQLite answer RETURNING): insert, then
    # read the ids back by the rows' unique order ids.
    await conn.execute(sa.insert(table), rows)
    ids: dict[str, int] = {}
    for part in in_chunks([r["order_id"] for r in rows]):
        found = await conn.execute(
            sa.select(table.c.order_id, table.c.id).where(table.c.order_id.in_(part))
        )
        ids.update({oid: rid for oid, rid in found})
    return ids


async def _add_stage_hours(conn: AsyncConnection, history: list[dict[str, Any]]) -> None:
    """Add the batch's stage times to the Status page's hourly figures (same commit)."""
    rows = hourly_rows((r["created_at"], r["run_number"], r["stage_seconds"]) for r in history)
    await add_counts(conn, stage_hourly_t, rows, ["hour", "run_number", "stage", "bin"])


async def add_run_verdicts(conn: AsyncConnection, counts: Mapping[tuple[int, str], int]) -> None:
    """Add ``counts`` (by run number and verdict; negative to take away, as retention
    does) to the Summary's verdicts per run (``run_verdicts``): one statement, in the
    caller's transaction, so the table always equals run_history counted per run and
    verdict. The rows go in key order, so two writers lock them in the same order."""
    rows = [
        {"run_number": run, "verdict": verdict, "count": n}
        for (run, verdict), n in sorted(counts.items())
        if n
    ]
    await add_counts(conn, run_verdicts_t, rows, ["run_number", "verdict"])


async def _insert_log(
    conn: AsyncConnection,
    entries: Sequence[Entry],
    history_ids: dict[str, int],
    now: datetime,
) -> None:
    rows = []
    for e in entries:
        j = e.judgement
        if not (j.logged or e.alarm_event):
            continue
        order = e.report.order
        rows.append(
            {
                "run_history_id": history_ids[e.order_id],
                "plot_type_id": e.plot_type.id,
                "run_number": order.run_number,
                "chunk": order.chunk,
                "verdict": j.verdict,
                "confirmed": j.confirmed,
                "transition": bool(e.transition_kind),
                "transition_kind": e.transition_kind,
                "alarm": e.alarm,
                "event": e.alarm_event,
                "created_at": now,
            }
        )
    if rows:
        await conn.execute(sa.insert(monitoring_log_t), rows)


async def _upsert_run_time(
    conn: AsyncConnection,
    entries: Sequence[Entry],
    history_ids: dict[str, int],
    now: datetime,
) -> None:
    rows = []
    for e in entries:
        if not e.newest:
            continue
        order = e.report.order
        j = e.judgement
        rows.append(
            {
                "plot_type_id": e.plot_type.id,
                "run_history_id": history_ids[e.order_id],
                "order_id": e.order_id,
                "run_period": order.run_period,
                "run_number": order.run_number,
                "chunk": order.chunk,
                "verdict": j.verdict,
                "confidence": j.confidence,
                "confirmed": j.confirmed,
                "model_id": e.model_id,
                "image_path": e.live_image,
                "heatmap_path": e.live_heatmap,
                "updated_at": now,
            }
        )
    # Order ids grow with time: a later report another keeper stored stays (a writer's
    # state book can be behind it; see transitions).
    await upsert(conn, run_time_t, rows, ["plot_type_id"], newer="order_id")


def _file_time(file_ns: int) -> datetime | None:
    return datetime.fromtimestamp(file_ns / 1e9, UTC) if file_ns > 0 else None
