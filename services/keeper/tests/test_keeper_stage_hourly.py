"""The Status page's hourly stage figures: added to in the same commit, never twice."""

from __future__ import annotations

import random
from pathlib import Path

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import utcnow
from hydra_common.stagestats import INFERENCES, STAGE_EDGES, bin_index, hourly_rows
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.writer import BatchWriter

from .conftest import make_report, make_world, query


def test_bins_follow_the_edges() -> None:
    assert bin_index(0.0) == 0
    assert bin_index(-1.0) == 0
    assert bin_index(STAGE_EDGES[5]) == 5
    assert bin_index(STAGE_EDGES[5] * 1.01) == 5
    assert bin_index(1e9) == len(STAGE_EDGES) - 2
    rows = hourly_rows(
        [(utcnow(), 7, {"predict": 0.01, "keep": "x"}), (utcnow(), 7, {"predict": 0.011})]
    )
    by_stage = {(r["stage"], r["bin"]): r for r in rows}
    assert by_stage[(INFERENCES, 0)]["count"] == 2  # a bad value still counts the inference
    predict = by_stage[("predict", bin_index(0.01))]
    assert predict["count"] == 2 and abs(predict["seconds_sum"] - 0.021) < 1e-9


async def test_writer_adds_each_report_once_to_the_hour(db_url: str, tmp_path: Path) -> None:
    world = await make_world(db_url)
    run = random.randrange(10**6, 10**9)
    reports = [make_report(world, run_number=run, chunk=i) for i in range(5)]
    engine = make_engine(db_url)
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        await writer.write(reports[:3])
        await writer.write(reports[2:])  # one replayed report: it changes nothing
    finally:
        await engine.dispose()
    rows = await query(
        db_url,
        "SELECT stage, SUM(count), SUM(seconds_sum) FROM stage_hourly WHERE run_number = :r"
        " GROUP BY stage",
        r=run,
    )
    counts = {stage: int(n) for stage, n, _ in rows}
    sums = {stage: float(s) for stage, _, s in rows}
    assert counts[INFERENCES] == 5
    # make_report's predict stage takes 1 ms in every report.
    assert counts["predict"] == 5
    assert abs(sums["predict"] - 0.005) < 1e-6
    assert {"feed", "queue", "dispatch", "report", "keep", "total"} <= set(counts)
