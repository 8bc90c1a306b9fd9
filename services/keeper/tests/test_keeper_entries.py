"""A batch's new reports as entries (``hydra_keeper.entries``): judged with their model's
thresholds, without the recorded ones, in order id order."""

from __future__ import annotations

from hydra_common.db.engine import make_engine
from hydra_common.ids import uuid7
from hydra_keeper.entries import new_entries
from hydra_keeper.reference import ReferenceCache

from .conftest import make_report, make_world


async def test_new_entries_are_judged_sorted_and_skip_recorded_ones(db_url: str) -> None:
    world = await make_world(db_url, thresholds={"Good": 0.7, "Bad": 0.95})
    first, second, third = uuid7(), uuid7(), uuid7()
    reports = {oid: make_report(world, (0.1, 0.9), order_id=oid) for oid in (third, first, second)}
    unknown_model = reports[third]
    unknown_model.model_id = 2**31 - 1  # deleted since: recorded as no model
    reference = ReferenceCache(3600)
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await reference.ensure(conn, reports.values())
    finally:
        await engine.dispose()
    entries = new_entries(reports, {second}, reference, 0.5)
    assert [e.order_id for e in entries] == [first, third]  # sorted; the recorded one left out
    known, unknown = entries
    assert (known.model_id, known.plot_type.id) == (world.model_id, world.plot_type_id)
    assert (known.judgement.verdict, known.judgement.confirmed) == ("Bad", False)  # 0.9 < 0.95
    # Without its model's thresholds the default (0.5) confirms the same weight.
    assert (unknown.model_id, unknown.judgement.confirmed) == (None, True)
