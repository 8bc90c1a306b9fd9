"""Retention of shadow verdicts: old ``shadow_history`` rows and their disagreement images
under ``shadow/`` go at the run history's age, but never while their model is still in
shadow (its figures and promotion rule read them all). On SQLite and on MariaDB, on a
database of the test's own (retention deletes across the whole database)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import Model, ModelShadow, PlotType, ShadowHistory, utcnow
from hydra_keeper.retention import Pruner, RetentionPolicy

OLD = timedelta(days=400)  # past the default run-history age (180 days)
NEW = timedelta(days=1)


async def _seed(url: str, storage: Path) -> tuple[dict[str, int], dict[str, Path], int]:
    """Shadow rows: old and new of a stopped shadow model, old of one still in shadow."""
    now = utcnow()
    engine = make_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            pt = PlotType(name=f"pt_{uuid.uuid4().hex[:8]}")
            s.add(pt)
            await s.flush()
            models = [
                Model(plot_type_id=pt.id, name=pt.name, version=v, architecture="small")
                for v in (1, 2)
            ]
            s.add_all(models)
            await s.flush()
            running, stopped = models
            s.add(ModelShadow(plot_type_id=pt.id, model_id=running.id, started_by="expert"))
            kinds: dict[str, tuple[int, datetime]] = {
                "old_running": (running.id, now - OLD),
                "old_stopped": (stopped.id, now - OLD),
                "new_stopped": (stopped.id, now - NEW),
            }
            rows: dict[str, ShadowHistory] = {}
            files: dict[str, Path] = {}
            for name, (mid, at) in kinds.items():
                rel = f"shadow/{pt.name}/{name}.png"
                (storage / rel).parent.mkdir(parents=True, exist_ok=True)
                (storage / rel).write_bytes(b"\x89PNG not really")
                files[name] = storage / rel
                rows[name] = ShadowHistory(
                    order_id=str(uuid.uuid4()),
                    model_id=mid,
                    plot_type_id=pt.id,
                    verdict="Bad",
                    active_verdict="Good",
                    agrees=False,
                    image_path=rel,
                    created_at=at,
                )
            s.add_all(rows.values())
            await s.commit()
            return {k: r.id for k, r in rows.items()}, files, running.id
    finally:
        await engine.dispose()


async def _present(url: str, ids: dict[str, int]) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            found = set(
                (
                    await conn.execute(
                        sa.select(ShadowHistory.id).where(ShadowHistory.id.in_(list(ids.values())))
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    return {k for k, v in ids.items() if v in found}


def test_shadow_history_pruned_only_after_the_shadow_ends(own_db_url: str, tmp_path: Path) -> None:
    storage = tmp_path / "storage"

    async def run() -> None:
        ids, files, running = await _seed(own_db_url, storage)
        engine = make_engine(own_db_url)
        try:
            pruner = Pruner(engine, storage, RetentionPolicy())
            dry = await pruner.dry_run()
            assert dry.rows["shadow_history"] == 1 and dry.files == 1
            assert await _present(own_db_url, ids) == set(ids)

            result = await pruner.prune()
            assert result.rows["shadow_history"] == 1 and result.files == 1
            assert await _present(own_db_url, ids) == {"old_running", "new_stopped"}
            assert not files["old_stopped"].exists()
            assert files["old_running"].exists() and files["new_stopped"].exists()

            # The shadow stops: its old verdicts go at the next pass.
            async with engine.begin() as conn:
                await conn.execute(sa.delete(ModelShadow).where(ModelShadow.model_id == running))
            again = await pruner.prune()
            assert again.rows["shadow_history"] == 1
            assert await _present(own_db_url, ids) == {"new_stopped"}
            assert not files["old_running"].exists() and files["new_stopped"].exists()

            # Kept forever with a run-history age of 0.
            forever = Pruner(engine, storage, RetentionPolicy(run_history_days=0))
            assert (await forever.prune()).rows["shadow_history"] == 0
        finally:
            await engine.dispose()

    asyncio.run(run())
