"""Nothing is acknowledged before it is committed; failures are retried, races handled."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from hydra.v1 import report_pb2

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_keeper.reference import ReferenceCache
from hydra_keeper.writer import BatchWriter
from hydra_testsupport.mysql import DEFAULT_MYSQL, drop_mysql_database


async def _admin(sql: str) -> None:
    server = os.environ.get("HYDRA_TEST_MYSQL_URL", DEFAULT_MYSQL)
    engine = make_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
async def missing_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A database URL that fails until ``create()`` makes and migrates the database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'hydra.db'}"  # no such directory

        async def create() -> None:
            await asyncio.to_thread(upgrade, url)

        yield url, create
        return
    try:
        await _admin("SELECT 1")
    except Exception as exc:
        pytest.skip(f"no MySQL server: {exc}")
    # The keeper connects as a user with no rights yet: it fails exactly as if the database
    # were down. ``create`` migrates the whole schema first and only then grants access, so
    # the keeper never sees a half-migrated schema (which a real deployment never shows it
    # either: migrations run before the services start).
    name = f"hydra_test_{uuid.uuid4().hex[:10]}"
    user = f"k_{uuid.uuid4().hex[:10]}"
    server = os.environ.get("HYDRA_TEST_MYSQL_URL", DEFAULT_MYSQL)
    admin_url = f"{server.rpartition('/')[0]}/{name}"
    host = server.split("@", 1)[1].rpartition("/")[0]
    url = f"mysql+asyncmy://{user}:pw@{host}/{name}"
    await _admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    await _admin(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw'")

    async def create_mysql() -> None:
        await _admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        await asyncio.to_thread(upgrade, admin_url)
        for h in ("%", "localhost"):
            await _admin(f"GRANT ALL PRIVILEGES ON {name}.* TO '{user}'@'{h}'")

    try:
        yield url, create_mysql
    finally:
        await asyncio.to_thread(drop_mysql_database, admin_url)
        for h in ("%", "localhost"):
            await _admin(f"DROP USER IF EXISTS '{user}'@'{h}'")


async def test_keeper_acks_only_after_commit(
    missing_db: Any, keeper_factory: Any, kit: ModuleType
) -> None:
    url, create = missing_db
    # The plot type does not exist yet either: the keeper creates it rather than drop reports.
    world = kit.World(url, f"pt_{uuid.uuid4().hex[:10]}", 0, 999_999)
    service, client = await keeper_factory(url)
    reports = [kit.make_report(world, (0.9, 0.1)) for _ in range(5)]
    await client.send(reports[:3])
    await client.send(reports[3:])
    deadline = time.monotonic() + 30
    while kit.metric(service, "hydra_keeper_db_write_errors_total") < 3:
        assert time.monotonic() < deadline, "the keeper never tried to write"
        await asyncio.sleep(0.05)
    assert client.acked == []  # the database is down: nothing may be acknowledged

    await create()  # the database comes back
    await client.wait_acked([r.order.order_id for r in reports], limit_s=60)
    rows = await kit.query(
        url,
        "SELECT h.order_id, h.model_id, h.verdict FROM run_history h"
        " JOIN plot_types p ON p.id = h.plot_type_id WHERE p.name = :n",
        n=world.plot_type,
    )
    assert sorted(r[0] for r in rows) == sorted(r.order.order_id for r in reports)
    # Model 999999 does not exist: recorded without a model, default thresholds.
    assert {(r[1], r[2]) for r in rows} == {(None, "Good")}
    assert kit.metric(service, "hydra_keeper_reports_total") == 5


async def test_keeper_stop_commits_what_is_queued(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    service, client = await keeper_factory(db_url, commit_max_wait_ms=200, commit_max_batch=1000)
    reports = [kit.make_report(world, (0.9, 0.1)) for _ in range(50)]
    await client.send(reports)
    # Stop once the keeper holds the reports (queued, or in the batch being written).
    for _ in range(3000):
        if len(service.queue) == 50 or service._busy:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the reports never reached the keeper")
    await service.stop()
    rows = await kit.query(
        db_url, "SELECT COUNT(*) FROM run_history WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert rows[0][0] == 50


async def test_keeper_concurrent_writers_record_once(
    db_url: str, kit: ModuleType, tmp_path: Path
) -> None:
    world = await kit.make_world(db_url)
    reports = [kit.make_report(world, (0.9, 0.1)) for _ in range(20)]
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        writers = [BatchWriter(e, tmp_path, ReferenceCache(3600), 1.0) for e in engines]
        results = await asyncio.gather(*(w.write(reports) for w in writers))
    finally:
        for e in engines:
            await e.dispose()
    assert sum(r.recorded for r in results) == 20
    assert sum(r.duplicates for r in results) == 20
    rows = await kit.query(
        db_url, "SELECT COUNT(*) FROM run_history WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert rows[0][0] == 20


async def _of_a_deleted_plot_type(
    kit: ModuleType, url: str, writer: BatchWriter, world: Any
) -> report_pb2.Report:
    """A report of a plot type deleted behind the keeper's back once the writer cached it:
    it cannot be stored (IntegrityError)."""
    gone = await kit.make_world(url)
    await writer.write([kit.make_report(gone, (0.9, 0.1))])  # caches the plot type
    for table in ("monitoring_log", "run_time", "run_history"):
        await kit.execute(url, f"DELETE FROM {table} WHERE plot_type_id = :p", p=gone.plot_type_id)
    await kit.execute(url, "DELETE FROM thresholds WHERE model_id = :m", m=gone.model_id)
    await kit.execute(url, "DELETE FROM models WHERE id = :m", m=gone.model_id)
    await kit.execute(url, "DELETE FROM plot_types WHERE id = :p", p=gone.plot_type_id)
    orphan: report_pb2.Report = kit.make_report(gone, (0.9, 0.1))
    return orphan


async def _too_long_for_its_column(
    kit: ModuleType, url: str, writer: BatchWriter, world: Any
) -> report_pb2.Report:
    """A value MariaDB refuses (DataError): the run period column holds 64 characters."""
    bad: report_pb2.Report = kit.make_report(world, (0.9, 0.1))
    bad.order.run_period = "RunPeriod-" + "x" * 200
    return bad


BadReport = Callable[[ModuleType, str, BatchWriter, Any], Awaitable[report_pb2.Report]]


@pytest.mark.parametrize(
    ("database", "bad_report"),
    [
        pytest.param("keeper_sqlite_url", _of_a_deleted_plot_type, id="integrity-sqlite"),
        pytest.param("mysql_url", _of_a_deleted_plot_type, id="integrity-mysql"),
        # SQLite holds a string of any length: the DataError is MariaDB's alone.
        pytest.param("mysql_url", _too_long_for_its_column, id="data-mysql"),
    ],
)
async def test_keeper_rejects_only_the_report_the_database_refuses(
    request: pytest.FixtureRequest,
    database: str,
    bad_report: BadReport,
    kit: ModuleType,
    tmp_path: Path,
) -> None:
    """A report the database refuses (IntegrityError, DataError) is rejected alone: its batch
    falls back to rows and the rest goes through."""
    url = str(request.getfixturevalue(database))
    world = await kit.make_world(url)
    engine = make_engine(url)
    try:
        writer = BatchWriter(engine, tmp_path, ReferenceCache(3600), 1.0)
        bad = await bad_report(kit, url, writer, world)
        ok = kit.make_report(world, (0.9, 0.1))
        result = await writer.write([ok, bad])
        assert (result.recorded, result.rejected) == (1, 1)
        rows = await kit.query(
            url,
            "SELECT order_id FROM run_history WHERE order_id IN (:a, :b)",
            a=ok.order.order_id,
            b=bad.order.order_id,
        )
        assert rows == [(ok.order.order_id,)]
    finally:
        await engine.dispose()
