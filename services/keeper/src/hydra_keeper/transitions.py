"""Transitions: each new report against its plot type's current state (its run_time row).

The monitoring log marks a transition where the verdict or its confirmation changed, or a
chunk was skipped within a run, and a plot type's newest report becomes its current state
(the Run page's live files). Pure but for reading the states, so the rules are easy to test.

The states are read once and then kept in memory (``StateBook``): the keeper is the only
writer of ``run_time``, so what it committed is what the table holds. Every
``refresh_seconds`` (another keeper replica, a hand edit) the book reads again every state
it holds, in one statement per ``REFRESH_CHUNK`` plot types; after a failed write it
forgets everything and reads again what it does not hold; a batch then costs no read at all.
Where a second keeper commits meanwhile, the run_time upsert still never puts an older
report back (``records``): a book behind it costs at most a transition mark.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import RunTime
from hydra_keeper.entries import Entry

run_time_t = RunTime.__table__
# Plot types whose states one refresh statement reads (bounded IN lists, as SQLite's are).
REFRESH_CHUNK = 500


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


class StateBook:
    """The plot types' current states, read on first use and kept up to date by the
    batches the keeper commits (see the module docstring)."""

    def __init__(self, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self._states: dict[int, State | None] = {}  # None: the plot type has no state yet
        self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        """Forget every state: the next batches read theirs again."""
        self._states = {}
        self._loaded_at = time.monotonic()

    async def states(self, conn: AsyncConnection, plot_type_ids: Iterable[int]) -> dict[int, State]:
        """The plot types' current states (a dict of the caller's own), read through ``conn``
        for those the book does not hold."""
        ids = set(plot_type_ids)
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            await self._refresh(conn, ids)
        missing = ids.difference(self._states)
        if missing:
            read = await current_states(conn, missing)
            self._states.update({pid: read.get(pid) for pid in missing})
        return {pid: s for pid in ids if (s := self._states[pid]) is not None}

    async def _refresh(self, conn: AsyncConnection, ids: set[int]) -> None:
        """Read again every state held, and the batch's, a chunk of plot types a statement.

        Forgetting them instead made each plot type's next image read its own: at a trickle
        through 568 plot types, nearly every image of the ten minutes after each refresh
        paid a read (a plot type comes round every ~10 minutes)."""
        wanted = sorted(set(self._states) | ids)
        read: dict[int, State] = {}
        for start in range(0, len(wanted), REFRESH_CHUNK):
            read.update(await current_states(conn, wanted[start : start + REFRESH_CHUNK]))
        self._states = {pid: read.get(pid) for pid in wanted}
        self._loaded_at = time.monotonic()

    def committed(self, entries: Sequence[Entry]) -> None:
        """Take the newest entry of each plot type as its state, once its batch committed
        (as ``records`` wrote its run_time row)."""
        for e in entries:
            if e.newest:
                order = e.report.order
                j = e.judgement
                self._states[e.plot_type.id] = State(
                    e.order_id,
                    j.verdict,
                    j.confirmed,
                    order.run_number,
                    order.chunk,
                    e.live_image,
                    e.live_heatmap,
                )


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
