"""The model catalog on MariaDB: each plot type's active and shadow model, read once per
model (not once per plot type) and kept as the same objects while nothing changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from hydra_common.db import schema as s
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_predictor.catalog import ActiveModel, ModelCatalog
from hydra_predictor.metrics import PredictorMetrics
from hydra_trainer.store import add_plot_type

pytestmark = pytest.mark.mysql

LABELS = ["Good", "Bad", "NoData"]


def _model(plot_type: s.PlotType, name: str, labels: list[str]) -> s.Model:
    return s.Model(
        plot_type_id=plot_type.id,
        name=name,
        version=1,
        architecture="small",
        location=f"/models/{name}/1",
        input_height=32,
        input_width=32,
        label_order=labels,
        status=s.ModelStatus.ACTIVE,
        trained_by="test",
    )


async def test_models_are_read_once_and_shared_by_their_plot_types(fresh_mysql_url: str) -> None:
    engine = make_engine(fresh_mysql_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            types = [
                await add_plot_type(session, f"pt{i}", LABELS, alarm=["Bad"]) for i in range(5)
            ]
            await session.flush()
            shared = _model(types[0], "shared", LABELS)
            alone = _model(types[3], "alone", ["NoData", "Good", "Bad"])
            shadow = _model(types[3], "shadow", LABELS)
            session.add_all([shared, alone, shadow])
            await session.flush()
            for pt in types[:3]:
                pt.active_model_id = shared.id
            types[3].active_model_id = alone.id  # types[4] has no model
            session.add(s.ModelShadow(plot_type_id=types[3].id, model_id=shadow.id))
            ids = {m.name: m.id for m in (shared, alone, shadow)}

        catalog = ModelCatalog(engine, PredictorMetrics(CollectorRegistry()))
        await catalog.refresh()
        assert catalog.ready.is_set()
        assert set(catalog.models) == {"pt0", "pt1", "pt2", "pt3"}
        assert catalog.lookup("pt4") is None
        first = catalog.lookup("pt0")
        assert first == ActiveModel(ids["shared"], "shared", 1, tuple(LABELS), frozenset({1}))
        assert catalog.lookup("pt1") is first and catalog.lookup("pt2") is first
        assert catalog.lookup("pt3") == ActiveModel(
            ids["alone"], "alone", 1, ("NoData", "Good", "Bad"), frozenset({2})
        )
        assert catalog.shadows == {
            "pt3": ActiveModel(ids["shadow"], "shadow", 1, tuple(LABELS), frozenset({1}))
        }

        await catalog.refresh()  # nothing changed: the same objects
        assert catalog.lookup("pt0") is first and catalog.lookup("pt2") is first

        async with engine.begin() as conn:
            await conn.execute(
                sa.update(s.Model)
                .where(s.Model.id == ids["shared"])
                .values(label_order=["Bad", "Good", "NoData"])
            )
            await conn.execute(
                sa.update(s.PlotType).where(s.PlotType.name == "pt2").values(active_model_id=None)
            )
        await catalog.refresh()
        changed = catalog.lookup("pt0")
        assert changed is not None and changed.labels == ("Bad", "Good", "NoData")
        assert changed.alarm_indices == frozenset({0})
        assert catalog.lookup("pt1") is changed
        assert catalog.lookup("pt2") is None
    finally:
        await engine.dispose()
