"""The ledger's cost per batch: a batch of files takes the same few SQL statements whether it
holds 2 files or 60 (one multi-row INSERT for files younger than the feeder, a SELECT ... IN
first for older ones and after an INSERT that found a path taken, one multi-row UPDATE for
rewritten files, one UPDATE ... IN for the done notices), on SQLite and on MariaDB. A
statement per file would cost the feeder and the database server a round trip per image."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_feeder.done import DoneFlusher
from hydra_feeder.intake import Intake
from hydra_feeder.ledger import Ledger, PlotTypeInfo
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import make_parser
from hydra_feeder.orders import PendingOrders
from hydra_feeder.settings import FeederSettings
from hydra_feeder.watch import ScanRequests
from hydra_testsupport import eventually_async as eventually


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of the test's own: SQLite, or a fresh MariaDB database."""
    name = "sqlite_url" if request.param == "sqlite" else "fresh_mysql_url"
    return str(request.getfixturevalue(name))


class Statements:
    """Counts the SQL statements an engine sends (an executemany counts once)."""

    def __init__(self, ledger: Ledger) -> None:
        self.sent: list[str] = []
        sa.event.listen(ledger.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.sent.append(statement.split(None, 1)[0].upper())

    def take(self) -> list[str]:
        """The statements' verbs since the last call, in order."""
        sent, self.sent = self.sent, []
        return sent


def png(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (shade, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


async def feed_round(
    tmp_path: Path, url: str, files: int, shade: int, age_s: float = 0.0, run: int = 7
) -> list[list[str]]:
    """Write ``files`` plots (again, rewritten, when they exist; ``age_s`` old), let one
    intake feed them in one batch and the balancer report them done; the statements of each
    step."""
    root = tmp_path / "input"
    mtime = time.time() - age_s
    for i in range(files):
        path = root / f"Run{run}" / f"CDC_occupancy_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(shade))
        os.utime(path, (mtime, mtime))
    settings = FeederSettings(database_url=url, data_dir=tmp_path, stable_seconds=0)
    ledger = Ledger(make_engine(url))
    statements = Statements(ledger)
    metrics = FeederMetrics(CollectorRegistry())
    pending = PendingOrders(settings.feeder_window)
    intake = Intake(settings, make_parser(), ledger, pending, ScanRequests(), metrics)
    intake.use_plot_types({"CDC_occupancy": PlotTypeInfo("png", False)})
    task = asyncio.create_task(intake.run())
    try:
        await eventually(lambda: len(pending) == files)
        fed = statements.take()
        done = DoneFlusher(ledger, pending, metrics.orders_done)
        done.on_done(list(pending.orders))
        assert await done.flush()
        return [fed, statements.take()]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()


@pytest.mark.parametrize("files", [2, 60])
async def test_a_batch_costs_the_same_statements_whatever_its_size(
    tmp_path: Path, ledger_url: str, files: int
) -> None:
    assert files <= FeederSettings(database_url=ledger_url).feeder_batch  # one batch
    fed, done = await feed_round(tmp_path, ledger_url, files, shade=1)
    assert fed == ["INSERT"]  # younger than the feeder: every new file at once, no look first
    assert done == ["UPDATE"]
    # The same files rewritten while a new feeder starts: taken for new, the INSERT finds
    # their paths taken and writes nothing; what the ledger knows, then the rows get the new
    # size, mtime and order id.
    refed, done = await feed_round(tmp_path, ledger_url, files, shade=2)
    assert refed == ["INSERT", "SELECT", "UPDATE"]
    assert done == ["UPDATE"]
    # Rewritten before the feeder started (found after a restart): looked up first.
    refed, done = await feed_round(tmp_path, ledger_url, files, shade=3, age_s=600)
    assert refed == ["SELECT", "UPDATE"]
    assert done == ["UPDATE"]
    # Brand-new files older than the feeder: looked up, then inserted.
    fed, _ = await feed_round(tmp_path / "b", ledger_url, files, shade=4, age_s=600, run=8)
    assert fed == ["SELECT", "INSERT"]
