"""The writer's books of the states it writes (``transitions.StateBook``,
``alarms.AlarmBook``): read once, kept from batch to batch, read again when forgotten, and
a raised alarm read for every batch (the API acknowledges it behind the keeper's back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_keeper.alarms import AlarmBook, AlarmRules
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.transitions import StateBook
from hydra_keeper.writer import BatchWriter

from .conftest import execute, make_report, make_world, query

GOOD, BAD = (0.9, 0.1), (0.1, 0.9)


async def test_the_state_book_holds_what_it_read_until_it_forgets(
    db_url: str, tmp_path: Path
) -> None:
    world = await make_world(db_url)
    engine = make_engine(db_url)
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        await writer.write([make_report(world, GOOD)])
        book = StateBook(3600)
        pid = world.plot_type_id
        async with engine.connect() as conn:
            assert (await book.states(conn, [pid]))[pid].verdict == "Good"
            await execute(
                db_url, "UPDATE run_time SET verdict = 'Bad' WHERE plot_type_id = :p", p=pid
            )
            assert (await book.states(conn, [pid]))[pid].verdict == "Good"  # held
            await conn.rollback()  # a fresh snapshot (MariaDB reads repeatably)
            book.invalidate()
            assert (await book.states(conn, [pid]))[pid].verdict == "Bad"  # read again
    finally:
        await engine.dispose()


async def test_the_writers_state_book_follows_its_commits(db_url: str, tmp_path: Path) -> None:
    world = await make_world(db_url)
    engine = make_engine(db_url)
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        await writer.write([make_report(world, GOOD, run_number=7, chunk=1)])
        await writer.write([make_report(world, BAD, run_number=7, chunk=2)])
        async with engine.connect() as conn:
            held = await writer.states.states(conn, [world.plot_type_id])
            read = await StateBook(3600).states(conn, [world.plot_type_id])
    finally:
        await engine.dispose()
    assert held == read  # what the book holds is the run_time row, live files included
    assert held[world.plot_type_id].verdict == "Bad"


async def test_an_acknowledged_alarm_stays_silent_though_the_book_held_it_raised(
    own_db_url: str, tmp_path: Path
) -> None:
    world = await make_world(own_db_url)
    engine = make_engine(own_db_url)
    try:
        # Beep for every Bad while raised and not acknowledged.
        rules = AlarmRules(bad_count=2, window=3, repeat_seconds=0.0)
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0, alarm_rules=rules)
        await writer.write([make_report(world, BAD)])
        raised = await writer.write([make_report(world, BAD)])
        assert [a.event for a in raised.alarms] == ["raise"]
        repeat = await writer.write([make_report(world, BAD)])
        assert [a.event for a in repeat.alarms] == ["repeat"]
        await execute(
            own_db_url,
            "UPDATE alarm_states SET acknowledged_by = 'crew1', acknowledged_at = updated_at"
            " WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
        silent = await writer.write([make_report(world, BAD)])
    finally:
        await engine.dispose()
    assert silent.recorded == 1 and silent.alarms == []


async def test_a_writer_whose_book_is_behind_never_puts_an_older_state_back(
    db_url: str, tmp_path: Path
) -> None:
    """Two keepers on one database (more than one replica, or a rolling update): one whose
    book has not seen the other's commit still never replaces the newer run_time row by an
    older report's."""
    world = await make_world(db_url)
    first, middle, last = [make_report(world, w) for w in (GOOD, BAD, GOOD)]  # ids grow
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        a, b = (BatchWriter(e, tmp_path, ReferenceCache(3600), 1.0) for e in engines)
        await a.write([first])  # a's book: first
        await b.write([last])  # the newest, committed by the other keeper
        assert (await a.write([middle])).recorded == 1  # a's book still says first
    finally:
        for e in engines:
            await e.dispose()
    rows = await query(
        db_url, "SELECT order_id FROM run_time WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert [r[0] for r in rows] == [last.order.order_id]


async def test_a_refresh_reads_every_held_state_at_once_not_one_image_at_a_time(
    db_url: str, tmp_path: Path
) -> None:
    """When the books' refresh is due, the next batch reads again every state they hold in
    one statement: the other plot types' next images then read nothing (forgetting them
    made each read its own, nearly every image at a trickle), and still see a hand edit."""
    worlds = [await make_world(db_url) for _ in range(3)]
    a, b, c = (w.plot_type_id for w in worlds)
    engine = make_engine(db_url)
    statements = 0

    def count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        for w in worlds:
            await writer.write([make_report(w, GOOD)])
        states, alarms = StateBook(3600), AlarmBook(3600)
        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        async with engine.connect() as conn:
            await states.states(conn, [a, b, c])
            await alarms.load(conn, [a, b, c])
            assert statements == 2
            await execute(
                db_url, "UPDATE run_time SET verdict = 'Bad' WHERE plot_type_id = :p", p=b
            )
            await conn.rollback()  # a fresh snapshot (MariaDB reads repeatably)
            states.refresh_seconds = alarms.refresh_seconds = 0.0  # due now
            await states.states(conn, [a])
            await alarms.load(conn, [a])
            assert statements == 4  # one statement each, for all three plot types
            states.refresh_seconds = alarms.refresh_seconds = 3600.0
            held = await states.states(conn, [b, c])
            held_alarms = await alarms.load(conn, [b, c])
            assert {x.state for x in held_alarms.values()} == {"clear"}  # clear: not re-read
            assert statements == 4  # held since the refresh: no read of their own
            assert held[b].verdict == "Bad" and held[c].verdict == "Good"
    finally:
        await engine.dispose()
