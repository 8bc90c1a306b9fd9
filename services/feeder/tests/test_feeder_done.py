"""The done-flusher alone, on a real ledger: notices end orders, and a failed write is kept
and written again, ahead of the notices that came meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

import hydra_feeder.done
from hydra_common.db.engine import make_engine
from hydra_common.db.schema import FedFile
from hydra_feeder.done import DoneFlusher
from hydra_feeder.ledger import Ledger, LedgerEntry
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.orders import PendingOrders
from hydra_testsupport import eventually_async as eventually


class FlakyLedger(Ledger):
    """Fails its first ``failures`` writes of done notices, as a database outage would."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(make_engine(url))
        self.failures = failures
        self.calls: list[list[str]] = []

    async def mark_done(self, order_ids: Sequence[str]) -> None:
        self.calls.append(list(order_ids))
        if len(self.calls) <= self.failures:
            raise sa.exc.OperationalError("UPDATE fed_files", {}, Exception("server gone"))
        await super().mark_done(order_ids)


async def states(ledger: Ledger) -> dict[str, str]:
    t = FedFile.__table__
    async with ledger.engine.connect() as conn:
        rows = await conn.execute(sa.select(t.c.order_id, t.c.state))
        return {oid: state for oid, state in rows}


async def pending_in(ledger: Ledger, ids: list[str]) -> PendingOrders:
    entries = [LedgerEntry(f"Run1/P_{i}.png", 1, 1, oid) for i, oid in enumerate(ids)]
    await ledger.record(entries, [])
    pending = PendingOrders(window=10)
    pending.restore(entries)
    return pending


async def test_a_failed_write_is_kept_and_written_again(sqlite_url: str) -> None:
    ledger = FlakyLedger(sqlite_url, failures=1)
    try:
        pending = await pending_in(ledger, ["a", "b", "c"])
        metrics = FeederMetrics(CollectorRegistry())
        done = DoneFlusher(ledger, pending, metrics.orders_done)
        done.on_done(["a", "b", "not-pending"])
        assert list(pending.orders) == ["c"]
        assert metrics.orders_done._value.get() == 2
        assert not await done.flush()  # the ledger fails: nothing lost
        assert done.unwritten == 2
        done.add(["c"])
        assert await done.flush()
        assert ledger.calls == [["a", "b"], ["a", "b", "c"]]
        assert done.unwritten == 0
        assert await states(ledger) == {"a": "done", "b": "done", "c": "done"}
    finally:
        await ledger.engine.dispose()


async def test_the_flush_loop_retries_until_the_ledger_takes_them(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hydra_feeder.done, "RETRY_SECONDS", 0.0)
    ledger = FlakyLedger(sqlite_url, failures=2)
    task = None
    try:
        pending = await pending_in(ledger, ["a", "b"])
        done = DoneFlusher(ledger, pending, FeederMetrics(CollectorRegistry()).orders_done)
        task = asyncio.create_task(done.run())
        done.on_done(["b"])
        await eventually(lambda: done.unwritten == 0 and len(ledger.calls) == 3)
        assert await states(ledger) == {"a": "pending", "b": "done"}
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await ledger.engine.dispose()


async def test_a_failed_ledger_write_is_counted_for_the_alert(sqlite_url: str) -> None:
    """The database refusing the ledger's writes (down, or its volume full: the drill's
    database-full episode) shows in hydra_feeder_ledger_write_errors_total, which the chart's
    HydraFeederLedgerErrors rule watches; reads are not writes and are not counted."""
    metrics = FeederMetrics(CollectorRegistry())
    ledger = Ledger(make_engine(sqlite_url), metrics.ledger_write_errors)
    try:
        await ledger.record([LedgerEntry("Run1/P_0.png", 1, 1, "a")], [])
        await ledger.mark_done(["a"])
        assert metrics.ledger_write_errors._value.get() == 0
        async with ledger.engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE fed_files"))
        with pytest.raises(sa.exc.OperationalError):
            await ledger.record([LedgerEntry("Run1/P_1.png", 1, 1, "b")], [])
        with pytest.raises(sa.exc.OperationalError):
            await ledger.mark_done(["b"])
        with pytest.raises(sa.exc.OperationalError):
            await ledger.lookup(["Run1/P_1.png"])
        assert metrics.ledger_write_errors._value.get() == 2
    finally:
        await ledger.engine.dispose()
