"""The Summary page's verdicts per run (``run_verdicts``): the keeper adds each batch's in the
commit that records it, a replayed batch adds nothing, and retention takes away what it
deletes, so the table always equals run_history counted per run and verdict. On SQLite and
on MariaDB, each test on a database of its own (retention deletes across the database)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from hydra.v1 import report_pb2

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import InferenceStatus, MonitoringLog, RunHistory, utcnow
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.retention import Pruner, RetentionPolicy
from hydra_keeper.writer import BatchWriter

from .conftest import make_report, make_world, query

GOOD, BAD, UNSURE = (0.9, 0.1), (0.1, 0.9), (0.55, 0.45)


async def _tables(url: str) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """(run_verdicts, run_history counted per run and verdict), by (run, verdict)."""
    kept = await query(url, "SELECT run_number, verdict, count FROM run_verdicts")
    counted = await query(
        url, "SELECT run_number, verdict, COUNT(*) FROM run_history GROUP BY run_number, verdict"
    )
    return (
        {(int(r), str(v)): int(n) for r, v, n in kept},
        {(int(r), str(v)): int(n) for r, v, n in counted},
    )


async def test_run_verdicts_follow_the_history_through_batches_replays_and_retention(
    own_db_url: str, tmp_path: Path
) -> None:
    url = own_db_url
    worlds = [await make_world(url), await make_world(url)]
    old_run, mixed_run, new_run, hand_run = (random.randrange(10**6, 10**9) + i for i in range(4))
    chunks = iter(range(10_000))

    def reports(run: int, weights: list[tuple[float, float]]) -> list[report_pb2.Report]:
        return [
            make_report(worlds[i % 2], w, run_number=run, chunk=next(chunks))
            for i, w in enumerate(weights)
        ]

    first = reports(old_run, [GOOD, GOOD, BAD, UNSURE, GOOD]) + reports(mixed_run, [GOOD, BAD, BAD])
    second = reports(mixed_run, [GOOD, UNSURE]) + reports(new_run, [GOOD, GOOD, BAD])
    engine = make_engine(url)
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        assert (await writer.write(first)).recorded == 8
        kept, counted = await _tables(url)
        assert kept == counted and sum(kept.values()) == 8
        assert (await writer.write(first[-3:] + second)).recorded == 5  # the replay: nothing
        kept, counted = await _tables(url)
        assert kept == counted and sum(kept.values()) == 13
        assert kept[(new_run, "Bad")] == 1 and kept[(mixed_run, "Bad")] == 2

        # A year ago: the first run whole and the mixed run's first batch (with their log
        # rows, which retention deletes first); the Run page's current rows stay (newer).
        year_ago = utcnow() - timedelta(days=365)
        rh, ml = RunHistory.__table__, MonitoringLog.__table__
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(rh)
                .where(rh.c.order_id.in_([r.order.order_id for r in first]))
                .values(created_at=year_ago)
            )
            await conn.execute(
                sa.update(ml)
                .where(ml.c.run_number.in_([old_run, mixed_run]))
                .values(created_at=year_ago)
            )
            # A row no keeper counted (written by hand): deleting it leaves no negative count.
            await conn.execute(
                sa.insert(RunHistory.__table__).values(
                    order_id=str(uuid.uuid4()),
                    plot_type_id=worlds[0].plot_type_id,
                    run_number=hand_run,
                    status=InferenceStatus.OK,
                    verdict="Good",
                    created_at=year_ago,
                )
            )
        policy = RetentionPolicy(
            run_history_days=180, monitoring_log_days=180, ledger_days=0, images_days=0,
            batch_size=2,
        )  # fmt: skip
        pruned = await Pruner(engine, tmp_path, policy).prune()
    finally:
        await engine.dispose()
    assert pruned.rows["run_history"] == 9  # several batches of 2
    kept, counted = await _tables(url)
    assert kept == counted
    assert all(n > 0 for n in kept.values())  # a (run, verdict) emptied is deleted
    assert not any(run in (old_run, hand_run) for run, _ in kept)
    # The mixed run keeps its second batch's two (neither Bad); the newest run all three.
    assert sum(n for (r, _), n in kept.items() if r == mixed_run) == 2
    assert (mixed_run, "Bad") not in kept
    assert sum(n for (r, _), n in kept.items() if r == new_run) == 3
