"""Shadow evaluation in the model life cycle: start / stop, the promotion rule, the figures,
and what the model server holds; on SQLite and on MariaDB."""

from __future__ import annotations

import uuid
from typing import Self

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_common import lifecycle, shadow
from hydra_common.db.schema import (
    AuditLog,
    Classification,
    KeptReason,
    Label,
    Model,
    ModelShadow,
    ModelStatus,
    Plot,
    ShadowHistory,
)
from hydra_common.errors import Conflict, InvalidInput
from hydra_testsupport.halls import ModelHall


class Hall(ModelHall):
    """A plot type of its own with an active model v1 and models added on demand."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.active = 0

    async def setup(self) -> Self:
        await super().setup()
        self.active = await self.model(ModelStatus.ACTIVE)
        return self

    async def verdicts(
        self, model_id: int, pairs: list[tuple[str, str]], label: str | None = None
    ) -> list[str]:
        """Record shadow verdicts (shadow, active) as the keeper would; ``label`` labels each
        image (kept by the keeper) with that label. Returns the order ids."""
        oids = []
        async with self.sessions() as s, s.begin():
            for verdict, active in pairs:
                oid = str(uuid.uuid4())
                oids.append(oid)
                s.add(
                    ShadowHistory(
                        order_id=oid,
                        model_id=model_id,
                        plot_type_id=self.plot_type_id,
                        active_model_id=self.active,
                        ok=verdict != "Error",
                        verdict=verdict,
                        active_verdict=active,
                        agrees=None if verdict == "Error" else verdict == active,
                        seconds_per_image=0.02,
                        active_seconds_per_image=0.01,
                    )
                )
                if label is not None:
                    plot = Plot(
                        plot_type_id=self.plot_type_id,
                        image_path=f"plots/{oid}.png",
                        order_id=oid,
                        kept_reason=KeptReason.UNBIASED,
                    )
                    s.add(plot)
                    await s.flush()
                    cid = await s.scalar(
                        sa.select(Classification.id).where(Classification.name == label)
                    )
                    s.add(
                        Label(
                            plot_id=plot.id,
                            plot_type_id=self.plot_type_id,
                            classification_id=cid,
                        )
                    )
        return oids

    async def start(self, model_id: int, **rule: object) -> ModelShadow:
        async with self.sessions() as s, s.begin():
            return await lifecycle.start_shadow(s, model_id, "alice", **rule)  # type: ignore[arg-type]

    async def promote(self, model_id: int) -> Model:
        return await self.run(lifecycle.promote, model_id, "alice")

    async def shadow(self) -> ModelShadow | None:
        async with self.sessions() as s:
            return await s.get(ModelShadow, self.plot_type_id)


async def test_start_and_stop_are_audited_and_one_per_plot_type(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await Hall(sessions).setup()
    v2 = await hall.model()
    v3 = await hall.model()
    failed = await hall.model(ModelStatus.FAILED)
    started = await hall.start(v2, min_images=10, min_agreement=0.9)
    assert (started.model_id, started.started_by) == (v2, "alice")
    with pytest.raises(Conflict, match="already in shadow"):
        await hall.start(v2)
    with pytest.raises(Conflict, match=f"model {v2} is in shadow"):
        await hall.start(v3)
    with pytest.raises(Conflict, match="active model"):
        await hall.start(hall.active)
    with pytest.raises(Conflict, match="failed"):
        await hall.start(failed)
    with pytest.raises(InvalidInput):
        await hall.start(v3, min_agreement=1.5)
    async with sessions() as s, s.begin():
        with pytest.raises(Conflict, match="not in shadow"):
            await lifecycle.stop_shadow(s, v3, "bob")
        assert (await lifecycle.shadow_of(s, v2)) is not None
        await lifecycle.stop_shadow(s, v2, "bob")
    assert await hall.shadow() is None
    await hall.start(v3)  # the plot type's shadow slot is free again
    async with sessions() as s:
        actions = (
            await s.execute(
                sa.select(AuditLog.username, AuditLog.action, AuditLog.after)
                .where(AuditLog.entity == "model", AuditLog.entity_id.in_([str(v2), str(v3)]))
                .order_by(AuditLog.id)
            )
        ).all()
    assert [tuple(a[:2]) for a in actions] == [
        ("alice", "shadow_start"),
        ("bob", "shadow_stop"),
        ("alice", "shadow_start"),
    ]
    assert actions[0][2] == {"min_images": 10, "min_agreement": 0.9}


async def test_the_model_server_holds_the_shadow_model(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await Hall(sessions).setup()
    old = await hall.model(ModelStatus.RETIRED)  # v2: neither candidate nor previous active
    async with sessions() as s:
        assert (await lifecycle.serving_versions(s))[hall.name] == {1}
    await hall.start(old)
    async with sessions() as s:
        assert (await lifecycle.serving_versions(s))[hall.name] == {1, 2}


async def test_the_rule_gates_promotion_and_promotion_ends_the_shadow(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await Hall(sessions).setup()
    v2 = await hall.model()
    await hall.start(v2, min_images=4, min_agreement=0.75)
    await hall.verdicts(v2, [("Good", "Good"), ("Bad", "Bad"), ("Error", "Good")])
    with pytest.raises(Conflict, match="4 images compared in shadow, 2 so far"):
        await hall.promote(v2)
    await hall.verdicts(v2, [("Bad", "Good"), ("Bad", "Good")])
    with pytest.raises(Conflict, match=r"at least 0\.750, it is 0\.500"):
        await hall.promote(v2)
    await hall.verdicts(v2, [("Good", "Good"), ("Good", "Good")])  # 4 of 6 = 0.667
    with pytest.raises(Conflict):
        await hall.promote(v2)
    await hall.verdicts(v2, [("Good", "Good"), ("Good", "Good")])  # 6 of 8 = 0.75
    promoted = await hall.promote(v2)
    assert promoted.status == ModelStatus.ACTIVE
    assert await hall.shadow() is None


async def test_without_a_rule_a_shadow_model_promotes_at_once_and_retiring_ends_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await Hall(sessions).setup()
    v2 = await hall.model()
    v3 = await hall.model()
    await hall.start(v2)
    async with sessions() as s, s.begin():
        await lifecycle.retire(s, v2, "alice")
    assert await hall.shadow() is None
    await hall.start(v3)
    assert (await hall.promote(v3)).id == v3
    assert await hall.shadow() is None


async def test_figures_agreement_with_the_active_model_and_the_labels(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hall = await Hall(sessions).setup()
    v2 = await hall.model()
    await hall.verdicts(v2, [("Good", "Good"), ("Bad", "Good"), ("Error", "Good")])
    # Labelled Bad: the shadow is right twice, the active model once.
    await hall.verdicts(v2, [("Bad", "Bad"), ("Bad", "Good"), ("Good", "Good")], label="Bad")
    async with sessions() as s:
        f = await shadow.figures(s, v2)
        shown = await shadow.disagreements(s, v2, 10)
    assert (f.images, f.errors, f.compared, f.agreements) == (6, 1, 5, 3)
    assert f.agreement == pytest.approx(0.6)
    assert (f.labelled, f.shadow_label_agreements, f.active_label_agreements) == (3, 2, 1)
    assert f.label_agreement == pytest.approx(2 / 3)
    assert f.active_label_agreement == pytest.approx(1 / 3)
    assert f.seconds_per_image == pytest.approx(0.02)
    assert f.active_seconds_per_image == pytest.approx(0.01)
    assert f.first_at is not None and f.first_at.tzinfo is not None
    assert [(h.verdict, h.active_verdict, label) for h, label in shown] == [
        ("Bad", "Good", "Bad"),
        ("Bad", "Good", None),
    ]
    async with sessions() as s:
        empty = await shadow.figures(s, hall.active)
    assert empty.images == 0 and empty.agreement is None and empty.seconds_per_image is None
