"""The model life cycle's rules, on SQLite and on MariaDB."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_common import lifecycle
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import (
    AuditLog,
    ModelStatus,
    Threshold,
)
from hydra_common.errors import Conflict, InvalidInput, NotFound
from hydra_testsupport.halls import ModelHall


async def test_promote_retires_the_previous_and_audits_who(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    v1 = await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
    v2 = await hall.model(parent=v1)
    model = await hall.run(lifecycle.promote, v2, "alice")
    assert model.status == ModelStatus.ACTIVE and model.signed_off_by == "alice"
    assert model.promoted_at is not None
    assert await hall.state() == (v2, {v1: ModelStatus.RETIRED, v2: ModelStatus.ACTIVE})
    async with sessions() as s:
        entry = await s.scalar(
            sa.select(AuditLog)
            .where(AuditLog.entity == "plot_type", AuditLog.entity_id == str(hall.plot_type_id))
            .order_by(AuditLog.id.desc())
        )
    assert entry is not None
    assert (entry.username, entry.action) == ("alice", "promote")
    assert entry.before == {"active_model_id": v1} and entry.after == {"active_model_id": v2}


async def test_promote_refuses_what_cannot_serve(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    active = await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
    failed = await hall.model(ModelStatus.FAILED)
    training = await hall.model(ModelStatus.TRAINING)
    trained = await hall.model()
    for model_id in (active, failed, training):
        with pytest.raises(Conflict):
            await hall.run(lifecycle.promote, model_id, "alice")
    with pytest.raises(NotFound):
        await hall.run(lifecycle.promote, 10**9, "alice")
    with pytest.raises(InvalidInput):
        await hall.run(lifecycle.promote, trained, " ")
    other = await ModelHall(sessions).setup()
    async with sessions() as s, s.begin():
        with pytest.raises(InvalidInput):
            await lifecycle.promote(s, trained, "alice", plot_type_id=other.plot_type_id)
    # Nothing changed.
    assert (await hall.state())[0] == active


async def test_a_retired_model_serves_again(sessions: async_sessionmaker[AsyncSession]) -> None:
    hall = await ModelHall(sessions).setup()
    old = await hall.model(ModelStatus.RETIRED)  # retired without ever serving
    current = await hall.model(ModelStatus.ACTIVE, promoted_ago=5)
    await hall.run(lifecycle.promote, old, "bob")
    assert await hall.state() == (old, {old: ModelStatus.ACTIVE, current: ModelStatus.RETIRED})


async def test_rollback_prefers_the_parent_that_served(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    grandparent = await hall.model(ModelStatus.RETIRED, promoted_ago=300)
    recent = await hall.model(ModelStatus.RETIRED, promoted_ago=100)
    current = await hall.model(ModelStatus.ACTIVE, parent=grandparent, promoted_ago=10)
    model = await hall.run(lifecycle.rollback, hall.name, "carol")
    assert model.id == grandparent  # the parent, though another served more recently
    active, statuses = await hall.state()
    assert active == grandparent and statuses[current] == ModelStatus.RETIRED
    assert statuses[recent] == ModelStatus.RETIRED
    async with sessions() as s:
        actions = list(
            await s.scalars(
                sa.select(AuditLog.action).where(
                    AuditLog.entity == "plot_type", AuditLog.entity_id == str(hall.plot_type_id)
                )
            )
        )
    assert actions == ["rollback"]


async def test_rollback_without_a_served_parent_takes_the_latest_served(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    never_served = await hall.model(ModelStatus.RETIRED)
    older = await hall.model(ModelStatus.RETIRED, promoted_ago=300)
    latest = await hall.model(ModelStatus.RETIRED, promoted_ago=100)
    await hall.model(ModelStatus.ACTIVE, parent=never_served, promoted_ago=10)
    model = await hall.run(lifecycle.rollback, hall.plot_type_id, "carol")
    assert model.id == latest
    assert model.id != older


async def test_rollback_with_nothing_served_before_is_a_conflict(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    with pytest.raises(Conflict, match="no previously active model"):
        await hall.run(lifecycle.rollback, hall.name, "carol")
    await hall.model(ModelStatus.RETIRED)  # retired, never served
    active = await hall.model(ModelStatus.ACTIVE, promoted_ago=1)
    with pytest.raises(Conflict):
        await hall.run(lifecycle.rollback, hall.name, "carol")
    assert (await hall.state())[0] == active
    with pytest.raises(NotFound):
        await hall.run(lifecycle.rollback, "no such plot type", "carol")


async def test_promote_then_rollback_round_trip(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    v1 = await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
    v2 = await hall.model(parent=v1)
    await hall.run(lifecycle.promote, v2, "alice")
    async with sessions() as s:
        assert (await lifecycle.rollback_target(s, hall.name)).id == v1  # type: ignore[union-attr]
    assert (await hall.run(lifecycle.rollback, hall.name, "alice")).id == v1
    assert await hall.state() == (v1, {v1: ModelStatus.ACTIVE, v2: ModelStatus.RETIRED})


async def test_candidates_are_the_newest_trained_after_the_active(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    stale = await hall.model()  # trained before the active one: not a candidate
    active = await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
    await hall.model(ModelStatus.FAILED)
    c1 = await hall.model()
    c2 = await hall.model()
    c3 = await hall.model()
    async with sessions() as s:
        found = [m.id for m in await lifecycle.candidates(s, hall.name)]
    assert found == [c3, c2][: lifecycle.CANDIDATES_PER_PLOT_TYPE]
    assert stale not in found and c1 not in found and active not in found
    # Promoting the newest ends every candidacy (none is newer).
    await hall.run(lifecycle.promote, c3, "alice")
    async with sessions() as s:
        assert await lifecycle.candidates(s, hall.name) == []


async def test_serving_versions_hold_active_candidates_and_previous(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    await hall.model(ModelStatus.RETIRED, promoted_ago=300)  # v1: served long ago
    await hall.model(ModelStatus.RETIRED, promoted_ago=100)  # v2: the previous active
    await hall.model(ModelStatus.ACTIVE, promoted_ago=10)  # v3
    await hall.model(ModelStatus.FAILED)  # v4
    await hall.model()  # v5: candidate
    empty = await ModelHall(sessions).setup()
    async with sessions() as s:
        served = await lifecycle.serving_versions(s)
    assert served[hall.name] == {2, 3, 5}
    assert empty.name not in served


async def test_retire(sessions: async_sessionmaker[AsyncSession]) -> None:
    hall = await ModelHall(sessions).setup()
    active = await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
    trained = await hall.model()
    await hall.run(lifecycle.retire, trained, "dave")
    await hall.run(lifecycle.retire, active, "dave")
    assert await hall.state() == (
        None,
        {active: ModelStatus.RETIRED, trained: ModelStatus.RETIRED},
    )
    with pytest.raises(Conflict):
        await hall.run(lifecycle.retire, trained, "dave")
    # The retired active model is what a rollback brings back.
    assert (await hall.run(lifecycle.rollback, hall.name, "dave")).id == active


async def test_set_threshold_records_who_and_manual(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await ModelHall(sessions).setup()
    model_id = await hall.model()
    first = await hall.run(lifecycle.set_threshold, model_id, "Bad", 0.7, "erin")
    assert (first.threshold, first.method, first.set_by) == (0.7, "manual", "erin")
    await hall.run(lifecycle.set_threshold, model_id, "Bad", 0.42, "frank")
    async with sessions() as s:
        rows = list(await s.scalars(sa.select(Threshold).where(Threshold.model_id == model_id)))
        audits = list(
            await s.scalars(
                sa.select(AuditLog)
                .where(AuditLog.entity == "threshold", AuditLog.entity_id == f"{model_id}/Bad")
                .order_by(AuditLog.id)
            )
        )
    assert [(t.threshold, t.set_by) for t in rows] == [(0.42, "frank")]
    assert [a.username for a in audits] == ["erin", "frank"]
    assert audits[1].before == {"threshold": 0.7, "method": "manual"}
    for label, value in (("Cosmics", 0.5), ("Bad", 1.5)):
        with pytest.raises(InvalidInput):
            await hall.run(lifecycle.set_threshold, model_id, label, value, "erin")


@pytest.mark.mysql
async def test_concurrent_promotions_serialise_on_the_plot_type(mysql_url: str) -> None:
    """Two promotions of one plot type at once: the row lock makes one wait, so exactly one
    model ends active and the other retired (never two active)."""
    engine = make_engine(mysql_url)
    sessions = make_sessionmaker(engine)
    try:
        hall = await ModelHall(sessions).setup()
        await hall.model(ModelStatus.ACTIVE, promoted_ago=60)
        a, b = await hall.model(), await hall.model()
        await asyncio.gather(
            hall.run(lifecycle.promote, a, "alice"), hall.run(lifecycle.promote, b, "bob")
        )
        active, statuses = await hall.state()
        assert [m for m, st in statuses.items() if st == ModelStatus.ACTIVE] == [active]
        assert active in (a, b)
    finally:
        await engine.dispose()
