"""Fixtures for the keeper's tests: a real keeper on a real database, a streaming client."""

from __future__ import annotations

import asyncio
import io
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, order_pb2, report_pb2
from PIL import Image
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_common.grpcserver import channel
from hydra_common.ids import uuid7
from hydra_keeper.entries import Entry
from hydra_keeper.reference import PlotTypeInfo
from hydra_keeper.service import KeeperService
from hydra_keeper.settings import KeeperSettings
from hydra_keeper.verdicts import judge
from hydra_testsupport.seeding import add_plot_type_with_model

OK = report_pb2.REPORT_STATUS_OK


@pytest.fixture(scope="session")
def keeper_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database shared by the keeper's tests (plot types keep them apart)."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('keeper-db') / 'hydra.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest, keeper_sqlite_url: str) -> str:
    """Each test runs on SQLite and on the MariaDB server."""
    if request.param == "sqlite":
        return keeper_sqlite_url
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture(params=["sqlite", "mysql"])
def own_db_url(request: pytest.FixtureRequest) -> str:
    """A database of this test's own, on SQLite and on the MariaDB server: for tests of the
    beam and alarms, since run conditions and the beam state are global to a database."""
    name = "sqlite_url" if request.param == "sqlite" else "fresh_mysql_url"
    return str(request.getfixturevalue(name))


@dataclass
class World:
    """A plot type with an active model and thresholds, made for one test."""

    url: str
    plot_type: str
    plot_type_id: int
    model_id: int


async def make_world(
    url: str,
    thresholds: dict[str, float] | None = None,
    collect_percent: float = 0.0,
) -> World:
    """Create a plot type (unique name), a model for it and the model's thresholds."""
    name = f"pt_{uuid.uuid4().hex[:10]}"
    thresholds = {"Good": 0.7, "Bad": 0.6} if thresholds is None else thresholds
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            pid, mid = await add_plot_type_with_model(
                conn, name, thresholds, collect_percent=collect_percent
            )
    finally:
        await engine.dispose()
    return World(url, name, int(pid), int(mid))


async def query(url: str, sql: str, **params: Any) -> list[Any]:
    """Rows of a SQL query (tests read what the keeper wrote)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())
    finally:
        await engine.dispose()


async def execute(url: str, sql: str, **params: Any) -> None:
    """Run one SQL statement and commit."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql), params)
    finally:
        await engine.dispose()


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """A small real PNG image."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def make_report(
    world: World,
    weights: Sequence[float] = (0.9, 0.1),
    labels: Sequence[str] = ("Good", "Bad"),
    *,
    order_id: str | None = None,
    run_number: int = 100,
    chunk: int = -1,
    image: bytes = b"",
    status: int = OK,
    heat: tuple[int, int, list[float]] | None = None,
    error: str = "",
) -> report_pb2.Report:
    """A predictor's report for the world's plot type."""
    now = time.time_ns()
    stages = order_pb2.StageTimestamps(
        file_ns=now - 6_000_000,
        fed_ns=now - 5_000_000,
        queued_ns=now - 4_000_000,
        dispatched_ns=now - 3_000_000,
        predict_start_ns=now - 2_000_000,
        predict_end_ns=now - 1_000_000,
        reported_ns=now,
    )
    order = order_pb2.InferenceOrder(
        order_id=order_id or uuid7(),
        plot_type=world.plot_type,
        run_period="RunPeriod-2025-01",
        run_number=run_number,
        chunk=chunk,
        source_path=f"RunPeriod-2025-01/Run{run_number}/{world.plot_type}.png",
        image=image,
        stages=stages,
    )
    report = report_pb2.Report(
        order=order,
        status=status,  # type: ignore[arg-type]
        model_id=world.model_id if status == OK else 0,
        model_name=world.plot_type,
        model_version=1,
        predictor_id="predictor-test",
        error=error,
    )
    if status == OK:
        report.labels.extend(labels)
        report.weights.extend(weights)
    if heat is not None:
        h, w, values = heat
        report.heat_map.height, report.heat_map.width = h, w
        report.heat_map.values.extend(values)
    return report


def make_entry(
    world: World,
    report: report_pb2.Report,
    *,
    collect_percent: float = 0.0,
    thresholds: dict[str, float] | None = None,
) -> Entry:
    """The batch writer's entry for a report, judged as the keeper judges it (Bad is the
    alarm label), without a database: for the tests of one step of a batch."""
    info = PlotTypeInfo(world.plot_type_id, world.plot_type, collect_percent, "png")
    used = {"Good": 0.7, "Bad": 0.6} if thresholds is None else thresholds
    j = judge(report, used, frozenset({"Bad"}), 0.5)
    model_id = report.model_id or None
    return Entry(report, report.order.order_id, info, model_id, j)


class RecordClient:
    """A predictor's side of a Record stream: sends reports, collects acknowledgements."""

    def __init__(self, port: int) -> None:
        self.channel = channel(f"127.0.0.1:{port}")
        self.call = keeper_pb2_grpc.KeeperServiceStub(self.channel).Record()
        self.acked: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for response in self.call:
            self.acked.extend(response.order_ids)

    async def send(self, reports: Iterable[report_pb2.Report]) -> None:
        """Send one RecordRequest."""
        await self.call.write(keeper_pb2.RecordRequest(reports=list(reports)))

    async def wait_acked(self, order_ids: Iterable[str], limit_s: float = 30.0) -> None:
        """Wait (polling, generous limit) until every id is acknowledged."""
        await self._wait_for(Counter(set(order_ids)), limit_s)

    async def record(self, reports: Sequence[report_pb2.Report]) -> None:
        """Send reports in one request and wait for this request's acknowledgements.

        Counted per id, so a replayed report waits for its new ack, not an earlier one.
        """
        wanted = Counter(self.acked) + Counter(r.order.order_id for r in reports)
        await self.send(reports)
        await self._wait_for(wanted, 30.0)

    async def _wait_for(self, wanted: Counter[str], limit_s: float) -> None:
        """Poll until the acks received include ``wanted`` (ids with their counts)."""
        deadline = time.monotonic() + limit_s
        while not Counter(self.acked) >= wanted:
            if time.monotonic() > deadline:
                missing = sorted((wanted - Counter(self.acked)).elements())
                raise AssertionError(f"not acknowledged: {missing}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Half-close, let the server finish the stream, close the channel."""
        try:
            await self.call.done_writing()
            await asyncio.wait_for(self._reader, 30)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            self._reader.cancel()
            await self.channel.close()


def keeper_settings(url: str, storage: Path, **overrides: Any) -> KeeperSettings:
    """Settings for a keeper under test: port 0 on loopback, short waits."""
    values: dict[str, Any] = {
        "database_url": url,
        "storage_dir": storage,
        "data_dir": storage.parent,
        "keeper_host": "127.0.0.1",
        "keeper_port": 0,
        "metrics_port": 0,
        "commit_max_wait_ms": 5,
        "keeper_refresh_seconds": 0.5,
        "heartbeat_seconds": 0.5,
        "grace_seconds": 5,
    }
    values.update(overrides)
    return KeeperSettings(**values)


KeeperFactory = Callable[..., Any]


@pytest.fixture
async def keeper_factory(tmp_path: Path) -> AsyncIterator[KeeperFactory]:
    """Start keepers (and clients) for a test; everything is stopped afterwards."""
    started: list[KeeperService] = []
    clients: list[RecordClient] = []

    async def start(url: str, **overrides: Any) -> tuple[KeeperService, RecordClient]:
        settings = keeper_settings(url, tmp_path / "storage", **overrides)
        service = KeeperService(settings, CollectorRegistry())
        await service.start()
        started.append(service)
        client = RecordClient(service.port)
        clients.append(client)
        return service, client

    yield start
    for client in clients:
        await client.close()
    for service in started:
        await service.stop()


def metric(service: KeeperService, name: str, **labels: str) -> float:
    """A metric's current value from the service's own registry."""
    value = service.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


@pytest.fixture
def kit() -> ModuleType:
    """This module's helpers (test files cannot import a conftest under importlib mode)."""
    return sys.modules[__name__]
