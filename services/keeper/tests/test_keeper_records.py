"""The batch's rows (``hydra_keeper.records``): the lookups by order id, in chunks, and the
inserts into plots, run_history, monitoring_log and run_time."""

from __future__ import annotations

from typing import Any

import pytest

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import utcnow
from hydra_common.ids import uuid7
from hydra_keeper import records
from hydra_keeper.transitions import mark_transitions

from .conftest import make_entry, make_report, make_world, query


def test_lookups_go_in_chunks() -> None:
    parts = list(records.in_chunks(list(range(1201))))
    assert [len(p) for p in parts] == [500, 500, 201]
    assert [x for p in parts for x in p] == list(range(1201))


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "mysql-no-returning"])
async def test_a_batch_goes_into_its_tables_and_is_found_again(
    db_url: str, monkeypatch: Any, returning: bool
) -> None:
    """Also as on MySQL, which has no INSERT ... RETURNING (a hall's own server: the ids are
    read back by order id); MariaDB and SQLite answer RETURNING."""
    monkeypatch.setattr(records, "IN_CHUNK", 2)  # several chunks out of a few rows
    world = await make_world(db_url)
    weights = [(0.9, 0.1), (0.1, 0.9), (0.1, 0.9), (0.9, 0.1), (0.45, 0.55)]
    entries = [
        make_entry(world, make_report(world, w, run_number=4, chunk=i))
        for i, w in enumerate(weights)
    ]
    entries[1].kept, entries[1].image_path = "bad", "plots/pt/kept.png"
    mark_transitions(entries, {})
    ids = [e.order_id for e in entries]
    engine = make_engine(db_url)
    if not returning:
        monkeypatch.setattr(engine.dialect, "insert_returning", False)
    try:
        async with engine.begin() as conn:
            await records.insert(conn, entries, utcnow())
        async with engine.connect() as conn:
            assert await records.existing(conn, [*ids, uuid7()]) == set(ids)
    finally:
        await engine.dispose()
    p = world.plot_type_id
    history = await query(
        db_url, "SELECT order_id, verdict, plot_id FROM run_history WHERE plot_type_id = :p", p=p
    )
    assert sorted(o for o, _, _ in history) == sorted(ids)
    plots = await query(
        db_url, "SELECT id, order_id, kept_reason FROM plots WHERE plot_type_id = :p", p=p
    )
    assert [(o, r) for _, o, r in plots] == [(ids[1], "bad")]
    assert {o: pid for o, _, pid in history}[ids[1]] == plots[0][0]
    logged = await query(
        db_url,
        "SELECT h.order_id, m.transition_kind FROM monitoring_log m"
        " JOIN run_history h ON h.id = m.run_history_id WHERE m.plot_type_id = :p"
        " ORDER BY h.order_id",
        p=p,
    )
    # Bad, Bad again, and an unconfirmed Bad: the log; the first Bad changed the verdict.
    assert logged == [(ids[1], "verdict"), (ids[2], ""), (ids[4], "verdict")]
    current = await query(db_url, "SELECT order_id FROM run_time WHERE plot_type_id = :p", p=p)
    assert current == [(ids[4],)]
