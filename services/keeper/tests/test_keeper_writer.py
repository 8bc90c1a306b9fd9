"""The batch writer's order of work: image files are written with no database transaction
open, in the file pool's threads, and before the commit that refers to them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event

from hydra_common.db.engine import make_engine
from hydra_keeper import storage
from hydra_keeper.alarms import AlarmRules
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.writer import BatchWriter

from .conftest import make_report, make_world, png_bytes, query


async def test_files_are_written_outside_the_transaction_and_before_the_commit(
    db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """A file written inside the open transaction looks the same on disk and in the tables
    as one written before it; only the moment of the write tells them apart. So a stub of
    the storage layer (it still writes, through the real function) notes, at each write,
    which transactions the engine has open, as the engine's own events report them."""
    world = await make_world(db_url)
    timeline: list[tuple[str, int]] = []  # (what, transactions open at that moment)
    open_now: set[int] = set()
    threads: set[str] = set()
    real_write = storage.write_atomic

    def write_atomic(root: Path, rel: str, data: bytes, durable: bool) -> None:
        timeline.append(("write", len(open_now)))
        threads.add(threading.current_thread().name)
        real_write(root, rel, data, durable)

    monkeypatch.setattr(storage, "write_atomic", write_atomic)
    engine = make_engine(db_url)

    def began(conn: Any) -> None:
        open_now.add(id(conn))
        timeline.append(("begin", len(open_now)))

    def ended(what: str) -> Any:
        def listener(conn: Any) -> None:
            open_now.discard(id(conn))
            timeline.append((what, len(open_now)))

        return listener

    event.listen(engine.sync_engine, "begin", began)
    event.listen(engine.sync_engine, "commit", ended("commit"))
    event.listen(engine.sync_engine, "rollback", ended("rollback"))
    reports = [
        make_report(world, (0.1, 0.9), chunk=i, image=png_bytes()) for i in range(4)
    ]  # confirmed Bad: every image kept (fsynced), the last one live besides
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        result = await writer.write(reports)
    finally:
        await engine.dispose()
    assert result.recorded == 4 and result.kept["bad"] == 4
    writes = [i for i, (what, _) in enumerate(timeline) if what == "write"]
    assert len(writes) == 4  # four kept images; the live one is a hard link to the last
    assert [n for what, n in timeline if what == "write"] == [0] * 4
    before, after = timeline[: writes[0]], timeline[writes[-1] :]
    assert ("begin", 1) in before  # the reads' transaction: the tracking sees it...
    assert before[-1][1] == 0  # ...ended before the first file
    assert ("begin", 1) in after and after[-1] == ("commit", 0)  # files, then the commit
    assert threads and all(name.startswith("keeper-files") for name in threads)
    kept = await query(
        db_url, "SELECT image_path FROM plots WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert len(kept) == 4 and all((tmp_path / path).is_file() for (path,) in kept)


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    db_url: str, tmp_path: Path
) -> None:
    """The writer's reads and inserts are one statement per table and batch, never one per
    report: a commit of 34 reports sends as many statements as one of 4 of the same mix
    (Good, confirmed Bad with its heat map, unconfirmed, and a sampled plot type), and the
    states it already wrote (current and alarm states) are not read again."""
    worlds = [await make_world(db_url) for _ in range(3)]
    worlds.append(await make_world(db_url, collect_percent=100.0))
    mix = [(0.9, 0.1), (0.1, 0.9), (0.55, 0.45), (0.9, 0.1)]
    heat = (2, 2, [0.1, 0.9, 0.2, 0.3])
    chunks = iter(range(1000))

    def batch(n: int) -> list[Any]:
        return [
            make_report(
                worlds[i % 4],
                mix[i % 4],
                chunk=next(chunks),
                image=png_bytes(),
                heat=heat if i % 4 == 1 else None,
            )
            for i in range(n)
        ]

    engine = make_engine(db_url)
    statements: list[str] = []

    def counted(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    try:
        # K of N so large that no alarm is raised: every batch writes the same alarm rows.
        rules = AlarmRules(bad_count=50, window=50)
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0, alarm_rules=rules)
        await writer.write(batch(4))  # the plot types' first batch reads their states
        event.listen(engine.sync_engine, "before_cursor_execute", counted)
        counts = []
        for n in (4, 34):
            statements.clear()
            result = await writer.write(batch(n))
            assert result.recorded == n and result.kept["unbiased"] > 0
            counts.append(len(statements))
            said = " ".join(statements)
            assert "INSERT INTO plots" in said and "INSERT INTO monitoring_log" in said
            assert said.count("INSERT INTO run_verdicts") == 1  # the Summary's, one a batch
            assert "FROM run_time" not in said and "FROM alarm_states" not in said
    finally:
        await engine.dispose()
    assert counts[0] == counts[1], statements
    assert counts[0] <= 11  # reads: recorded ids, sampled keys, beam; then the inserts
