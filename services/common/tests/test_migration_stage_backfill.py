"""Migration 0008: an upgraded hall's Status page has the week before the upgrade."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import downgrade, upgrade
from hydra_common.db.schema import InferenceStatus, PlotType, RunHistory, StageHourly, utcnow
from hydra_common.ids import uuid7
from hydra_common.stagestats import INFERENCES
from hydra_testsupport.rows import inserted_id


@pytest.fixture(params=["sqlite", "mysql"])
def any_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "fresh_mysql_url"
    )
    return url


async def test_backfill_counts_the_last_week_once(any_url: str) -> None:
    downgrade(any_url, "0007")  # a hall with history, before the upgrade
    engine = make_engine(any_url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            pt = inserted_id(
                await conn.execute(sa.insert(PlotType.__table__).values(name="backfill_pt"))
            )
            ages = [timedelta(hours=2)] * 3 + [timedelta(days=3)] * 2 + [timedelta(days=9)]
            await conn.execute(
                sa.insert(RunHistory.__table__),
                [
                    {
                        "order_id": uuid7(),
                        "plot_type_id": pt,
                        "run_number": 77,
                        "status": InferenceStatus.OK,
                        "verdict": "Good",
                        "stage_seconds": {"predict": 0.02},
                        "created_at": now - age,
                    }
                    for age in ages
                ],
            )
        upgrade(any_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(StageHourly.stage, sa.func.sum(StageHourly.count))
                    .where(StageHourly.run_number == 77)
                    .group_by(StageHourly.stage)
                )
            ).all()
    finally:
        await engine.dispose()
    counts = {stage: int(n) for stage, n in rows}
    # The week before the upgrade: 5 inferences; the one 9 days old is beyond any window.
    assert counts == {INFERENCES: 5, "predict": 5}
