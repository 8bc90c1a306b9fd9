"""Migration 0013: an upgraded hall's Summary page counts the history from before the upgrade."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import downgrade, upgrade
from hydra_common.db.schema import InferenceStatus, PlotType, RunHistory, RunVerdictCount
from hydra_common.ids import uuid7
from hydra_testsupport.rows import inserted_id


@pytest.fixture(params=["sqlite", "mysql"])
def any_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "fresh_mysql_url"
    )
    return url


async def test_backfill_counts_the_history_per_run_and_verdict(any_url: str) -> None:
    downgrade(any_url, "0012")  # a hall with history, before the upgrade
    engine = make_engine(any_url)
    history = [(77, "Good")] * 3 + [(77, "Bad")] * 2 + [(78, "Good"), (79, "NoData")]
    try:
        async with engine.begin() as conn:
            pt = inserted_id(
                await conn.execute(sa.insert(PlotType.__table__).values(name="verdicts_pt"))
            )
            await conn.execute(
                sa.insert(RunHistory.__table__),
                [
                    {
                        "order_id": uuid7(),
                        "plot_type_id": pt,
                        "run_number": run,
                        "status": InferenceStatus.OK,
                        "verdict": verdict,
                    }
                    for run, verdict in history
                ],
            )
        upgrade(any_url)
        async with engine.connect() as conn:
            rv = RunVerdictCount
            rows = (await conn.execute(sa.select(rv.run_number, rv.verdict, rv.count))).all()
    finally:
        await engine.dispose()
    assert {(r, v): int(n) for r, v, n in rows} == {
        (77, "Good"): 3,
        (77, "Bad"): 2,
        (78, "Good"): 1,
        (79, "NoData"): 1,
    }
