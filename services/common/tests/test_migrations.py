"""Migrations go up and down, and the schema refuses what it can refuse."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.migrate import downgrade, upgrade
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Label,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
)


@pytest.fixture(params=["sqlite", "mysql"])
def any_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "fresh_mysql_url"
    )
    return url


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    await engine.dispose()
    return set(names)


async def test_up_down_up(any_url: str) -> None:
    assert {"run_history", "plot_types", "labels", "alembic_version"} <= await _tables(any_url)
    downgrade(any_url)
    assert await _tables(any_url) == {"alembic_version"}
    upgrade(any_url)
    assert "run_history" in await _tables(any_url)


async def _seed(url: str) -> tuple[int, int, dict[str, int]]:
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        cls = {c.name: c.id for c in (await s.scalars(sa.select(Classification))).all()}
        pt = PlotType(name="FTOF_adcTime_s1", detector="FTOF")
        s.add(pt)
        await s.flush()
        for name in ("Good", "Bad"):
            s.add(PlotTypeClassification(plot_type_id=pt.id, classification_id=cls[name]))
        plot = Plot(plot_type_id=pt.id, image_path="x.png", kept_reason=KeptReason.BAD)
        s.add(plot)
        await s.flush()
        ids = (pt.id, plot.id)
    await engine.dispose()
    return ids[0], ids[1], cls


async def test_shared_labels_seeded(any_url: str) -> None:
    _, _, cls = await _seed(any_url)
    assert {"Good", "Bad", "NoData", "Ignore", "HotChannel"} <= set(cls)


async def test_duplicate_order_id_refused(any_url: str) -> None:
    pt_id, _, _ = await _seed(any_url)
    engine = make_engine(any_url)
    sm = make_sessionmaker(engine)
    row = dict(
        order_id="0190f0f0-0000-7000-8000-000000000001",
        plot_type_id=pt_id,
        status=InferenceStatus.OK,
        verdict="Good",
    )
    async with sm() as s, s.begin():
        s.add(RunHistory(**row))
    with pytest.raises(IntegrityError):
        async with sm() as s, s.begin():
            s.add(RunHistory(**row))
    await engine.dispose()


async def test_label_outside_valid_classifications_refused(any_url: str) -> None:
    pt_id, plot_id, cls = await _seed(any_url)
    engine = make_engine(any_url)
    sm = make_sessionmaker(engine)
    async with sm() as s, s.begin():
        s.add(Label(plot_id=plot_id, plot_type_id=pt_id, classification_id=cls["Bad"]))
    with pytest.raises(IntegrityError):  # HotChannel is not valid for this plot type
        async with sm() as s, s.begin():
            lab = await s.scalar(sa.select(Label).where(Label.plot_id == plot_id))
            assert lab is not None
            lab.classification_id = cls["HotChannel"]
    await engine.dispose()


async def test_the_migrations_build_exactly_the_schema_the_code_declares(any_url: str) -> None:
    """A column added to ``schema.py`` without a migration (or the other way round) fails
    here, on both back ends, before it fails in a hall."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hydra_common.db.schema import Base

    engine = make_engine(any_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
