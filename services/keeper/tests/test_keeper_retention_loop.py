"""The keeper's retention loop: it runs passes on its own, a failed pass is counted and the
next one still runs, and the keeper starts the loop only when something is ever removed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_common.db.schema import FedFile, utcnow
from hydra_keeper.metrics import RetentionMetrics
from hydra_keeper.retention import Pruner, RetentionPolicy
from hydra_keeper.service import KeeperService
from hydra_keeper.settings import KeeperSettings
from hydra_testsupport.polling import eventually_async


async def _stopped(task: asyncio.Task[None]) -> None:
    """Cancel the loop and wait until it has ended: a pass cut off mid-query closes its
    connection in the background, and that must finish before the engine is disposed (or it
    is left pending, and the event loop's shutdown waits on it for ever)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_the_loop_prunes_by_itself_and_survives_a_failed_pass(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hydra.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    registry = CollectorRegistry()
    metrics = RetentionMetrics(registry)
    old = utcnow() - timedelta(days=90)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(FedFile.__table__),
                [
                    {
                        "source_path": f"Run1/p_{i}.png",
                        "file_size": 1,
                        "file_mtime_ns": 1,
                        "order_id": f"order-{i}",
                        "state": "done",
                        "fed_at": old,
                        "done_at": old,
                    }
                    for i in range(5)
                ],
            )
        # A pass on a database without the tables fails; the loop counts it and goes on.
        broken = Pruner(
            make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"),
            tmp_path,
            RetentionPolicy(),
            metrics,
        )
        task = asyncio.create_task(broken.run_forever(0.01))
        await eventually_async(
            lambda: (registry.get_sample_value("hydra_keeper_retention_errors_total") or 0) >= 2,
            what="two failed passes counted",
        )
        await _stopped(task)
        await broken.engine.dispose()

        pruner = Pruner(engine, tmp_path, RetentionPolicy(batch_size=2), metrics)
        task = asyncio.create_task(pruner.run_forever(0.01))

        async def ledger_empty() -> bool:
            async with engine.connect() as conn:
                return await conn.scalar(sa.select(sa.func.count()).select_from(FedFile)) == 0

        await eventually_async(ledger_empty, what="the loop emptied the old ledger")
        await _stopped(task)
        removed = registry.get_sample_value(
            "hydra_keeper_retention_removed_total", {"table": "fed_files"}
        )
        assert removed == 5
    finally:
        await engine.dispose()


def test_the_keeper_runs_the_loop_only_when_something_expires(tmp_path: Path) -> None:
    forever = KeeperSettings(
        data_dir=tmp_path,
        retention_run_history_days=0,
        retention_monitoring_log_days=0,
        retention_ledger_days=0,
        retention_images_days=0,
    )
    kept = KeeperService(forever, CollectorRegistry())
    assert not kept.pruner.policy.enabled
    default = KeeperService(KeeperSettings(data_dir=tmp_path), CollectorRegistry())
    assert default.pruner.policy.enabled
    assert default.pruner.policy.ledger_days == 30 and default.pruner.policy.images_days == 180
