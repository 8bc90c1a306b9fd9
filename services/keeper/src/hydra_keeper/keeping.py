"""The keeping policy: which new images are kept for labelling, and why.

Kept (the reason is the plot row's ``kept_reason``): every confirmed alarm verdict
(``bad``) and every unconfirmed one (``unconfirmed``), including those a mask accepted;
every uncertain OK one (``uncertain``: the margin between its two top weights below
``HYDRA_KEEP_MARGIN_BELOW``, when set); and an unbiased sample of the others at the plot
type's collect percent (``unbiased``), never a second image of the same plot type, run and
chunk. Failed inferences are never sampled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import Plot
from hydra_common.uncertainty import margin
from hydra_keeper.entries import Entry
from hydra_keeper.records import in_chunks

plots_t = Plot.__table__

Key = tuple[int, int, int]  # (plot type id, run number, chunk)


def sampled(order_id: str, collect_percent: float) -> bool:
    """Whether the unbiased sample takes this order, with probability collect_percent / 100.

    Drawn from a hash of the order id rather than a random generator, so a report replayed
    after a failed commit makes the same choice (and writes the same files).
    """
    if collect_percent <= 0:
        return False
    if collect_percent >= 100:
        return True
    digest = hashlib.blake2b(order_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100 < collect_percent


class KeepingPolicy:
    """Marks the entries of a batch to keep (``Entry.kept``: the reason, or '')."""

    def __init__(self, keep_margin_below: float = 0.0) -> None:
        self.keep_margin_below = keep_margin_below  # 0: the uncertainty rule is off

    async def choose(self, conn: AsyncConnection, entries: Sequence[Entry]) -> None:
        """Keep every confirmed alarm verdict and every unconfirmed one, every uncertain one
        (a margin below ``keep_margin_below``, when set), and a sample.

        The unbiased sample (at the plot type's collect percent, over OK and NoModel
        reports) never takes a second image of the same plot type, run and chunk: neither
        one kept by an earlier batch (read through ``conn``) nor one of this batch.
        """
        candidates: list[Entry] = []
        for e in entries:
            e.candidate = False
            if not e.report.order.image:
                continue
            j = e.judgement
            if j.logged or j.accepted_from:
                e.kept = "bad" if j.confirmed else "unconfirmed"
            elif j.status.value == "ok" and self.uncertain(j.weights):
                e.kept = "uncertain"
            elif j.status.value != "error" and sampled(e.order_id, e.plot_type.collect_percent):
                e.candidate = True
                candidates.append(e)
        if not candidates:
            return
        keys = {
            (e.plot_type.id, e.report.order.run_number, e.report.order.chunk) for e in candidates
        }
        taken = await _kept_keys(conn, list(keys))
        for e in entries:
            order = e.report.order
            key = (e.plot_type.id, order.run_number, order.chunk)
            if e.kept:
                taken.add(key)
            elif e.candidate and key not in taken:
                e.kept = "unbiased"
                taken.add(key)

    def uncertain(self, weights: dict[str, float]) -> bool:
        """Whether the keeping rule for uncertain images takes these weights."""
        m = margin(weights) if self.keep_margin_below > 0 else None
        return m is not None and m < self.keep_margin_below


async def _kept_keys(conn: AsyncConnection, keys: list[Key]) -> set[Key]:
    """Which of these (plot type, run, chunk) already have a kept image."""
    c = plots_t.c
    found: set[Key] = set()
    for part in in_chunks(keys):
        rows = await conn.execute(
            sa.select(c.plot_type_id, c.run_number, c.chunk)
            .where(sa.tuple_(c.plot_type_id, c.run_number, c.chunk).in_(part))
            .distinct()
        )
        found.update((a, b, d) for a, b, d in rows)
    return found
