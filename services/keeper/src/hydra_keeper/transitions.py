"""Transitions: each new report against its plot type's current state (its run_time row).

The monitoring log marks a transition where the verdict or its confirmation changed, or a
chunk was skipped within a run, and a plot type's newest report becomes its current state
(the Run page's live files). Pure but for reading the states, so the rules are easy to test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import RunTime
from hydra_keeper.entries import Entry

run_time_t = RunTime.__table__


@dataclass(slots=True)
class State:
    """A plot type's latest inference (its run_time row)."""

    order_id: str
    verdict: str
    confirmed: bool
    run_number: int
    chunk: int
    image_path: str = ""
    heatmap_path: str | None = None


async def current_states(conn: AsyncConnection, plot_type_ids: Iterable[int]) -> dict[int, State]:
    """The plot types' current states, by plot type id (a plot type never seen has none)."""
    c = run_time_t.c
    rows = await conn.execute(
        sa.select(
            c.plot_type_id,
            c.order_id,
            c.verdict,
            c.confirmed,
            c.run_number,
            c.chunk,
            c.image_path,
            c.heatmap_path,
        ).where(c.plot_type_id.in_(list(plot_type_ids)))
    )
    return {row[0]: State(*row[1:]) for row in rows}


def mark_transitions(entries: list[Entry], states: dict[int, State]) -> list[str]:
    """Mark transitions and each plot type's newest entry; returns live files replaced.

    A report older than its plot type's latest (a late arrival) neither becomes the
    current state nor counts as a transition: it tells nothing about the present.
    ``states`` is updated as the entries (in order) replace them.
    """
    newest: dict[int, Entry] = {}
    stale: list[str] = []
    for e in entries:
        pid = e.plot_type.id
        prev = states.get(pid)
        order = e.report.order
        j = e.judgement
        if prev is not None and e.order_id <= prev.order_id:
            continue
        kinds = []
        if prev is None:
            kinds.append("first")
        elif prev.verdict != j.verdict:
            kinds.append("verdict")
        elif prev.confirmed != j.confirmed:
            kinds.append("confirmation")
        if (
            prev is not None
            and order.chunk >= 0
            and prev.chunk >= 0
            and prev.run_number == order.run_number
            and order.chunk != prev.chunk + 1
        ):
            kinds.append("chunk_skip")
        e.transition_kind = "+".join(kinds)
        states[pid] = State(e.order_id, j.verdict, j.confirmed, order.run_number, order.chunk)
        if prev is not None and pid not in newest:
            # The stored state's live files go once this batch replaces it.
            if prev.image_path.startswith("live/"):
                stale.append(prev.image_path)
            if prev.heatmap_path and prev.heatmap_path.startswith("live/"):
                stale.append(prev.heatmap_path)
        if pid in newest:
            newest[pid].newest = False
        e.newest = True
        newest[pid] = e
    return stale
