"""The plot-type refresh alone: a new set reaches its listener once, an unchanged one not."""

from __future__ import annotations

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import PlotType
from hydra_feeder.ledger import Ledger, PlotTypeInfo
from hydra_feeder.plot_types import PlotTypeRefresh, PlotTypes


async def test_changed_plot_types_reach_the_listener(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    heard: list[PlotTypes] = []
    refresh = PlotTypeRefresh(Ledger(engine), 10.0, heard.append)
    try:
        async with make_sessionmaker(engine)() as session:
            session.add(PlotType(name="CDC_occupancy", file_type="png"))
            await session.commit()
        await refresh.load()
        assert heard == [{"CDC_occupancy": PlotTypeInfo("png", False)}]
        await refresh.refresh()
        assert len(heard) == 1  # unchanged: nothing to retry
        async with make_sessionmaker(engine)() as session:
            session.add(PlotType(name="HEL_board", file_type="jpg", ignored=True))
            await session.commit()
        await refresh.refresh()
        assert heard[-1]["HEL_board"] == PlotTypeInfo("jpg", True)
        assert refresh.current is heard[-1]
    finally:
        await engine.dispose()
