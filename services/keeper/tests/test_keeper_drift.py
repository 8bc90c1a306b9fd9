"""Drift: the active model's live top weights and verdict mix against its test split (PSI),
agreement with later expert labels, the stored figures and the exported gauges."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Label,
    ModelDrift,
    ModelEvaluation,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
    Split,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_keeper.drift import DriftMonitor, DriftSettings, compare, psi, weight_histogram
from hydra_testsupport.rows import inserted_id

SETTINGS = DriftSettings(drift_min_inferences=50, drift_min_labels=10, drift_psi_threshold=0.25)


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    same = psi({"a": 10, "b": 30}, {"a": 100, "b": 300})
    assert same == pytest.approx(0.0, abs=1e-3)
    small = psi({"a": 12, "b": 28}, {"a": 100, "b": 300})
    large = psi({"a": 30, "b": 10}, {"a": 100, "b": 300})
    assert 0 < small < 0.1 < 0.25 < large
    # A bin empty on one side stays finite (smoothing).
    assert np.isfinite(psi({"a": 40}, {"b": 40}))
    assert weight_histogram([0.0, 0.05, 0.5, 0.99, 1.0]) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_compare_gives_reasons_only_with_enough_evidence() -> None:
    test = [(0.95, "Good")] * 90 + [(0.9, "Bad")] * 10
    shifted = [(0.55, "Bad")] * 60
    few = compare(SETTINGS, shifted[:10], test, [False] * 5)
    assert few["drift_score"] is None and few["retrain_suggested"] is False
    assert few["label_agreement"] == 0.0  # shown, but 5 labels do not count
    found = compare(SETTINGS, shifted, test, [True] * 4 + [False] * 8)
    assert found["drift_score"] > 1.0 and found["retrain_suggested"] is True
    assert found["label_agreement"] == pytest.approx(0.3333, abs=1e-4)
    reasons = found["evidence"]["reasons"]
    assert len(reasons) == 2 and "PSI" in reasons[0] and "33%" in reasons[1]
    assert found["evidence"]["top_weight_live"][5] == 60
    assert found["evidence"]["verdicts_test"] == {"Good": 90, "Bad": 10}


async def _seed(
    kit: ModuleType, world: Any, live: list[tuple[float, str]], labels: list[str | None]
) -> None:
    """The model is active; its test split (100 images, sure and mostly Good) and the live
    window (with the expert labels given to the first kept images)."""
    rng = np.random.default_rng(3)
    await kit.execute(
        world.url,
        "UPDATE plot_types SET active_model_id = :m WHERE id = :p",
        m=world.model_id,
        p=world.plot_type_id,
    )
    engine = make_engine(world.url)
    try:
        async with engine.begin() as conn:
            ids = dict(
                (await conn.execute(sa.select(Classification.name, Classification.id))).all()
            )
            for name in ("Good", "Bad", "NoData"):  # labels need to be valid for the type
                await conn.execute(
                    sa.insert(PlotTypeClassification.__table__).values(
                        plot_type_id=world.plot_type_id, classification_id=ids[name]
                    )
                )
            for i in range(100):
                verdict = "Bad" if i % 10 == 0 else "Good"
                top = float(rng.uniform(0.9, 1.0))
                plot_id = inserted_id(
                    await conn.execute(
                        sa.insert(Plot.__table__).values(
                            plot_type_id=world.plot_type_id,
                            image_path=f"test/{uuid7()}.png",
                            kept_reason=KeptReason.IMPORTED,
                            created_at=utcnow(),
                        )
                    )
                )
                other = "Good" if verdict == "Bad" else "Bad"
                await conn.execute(
                    sa.insert(ModelEvaluation.__table__).values(
                        model_id=world.model_id,
                        plot_id=plot_id,
                        true_classification_id=ids[verdict],
                        predicted_classification_id=ids[verdict],
                        weights={verdict: top, other: 1 - top, "NoData": 0.0},
                        split=Split.TEST,
                    )
                )
            now = utcnow()
            for i, (top, verdict) in enumerate(live):
                oid = str(uuid7())
                await conn.execute(
                    sa.insert(RunHistory.__table__).values(
                        order_id=oid,
                        plot_type_id=world.plot_type_id,
                        run_number=9000 + i // 10,
                        status=InferenceStatus.OK,
                        model_id=world.model_id,
                        verdict=verdict,
                        confidence=top,
                        weights={verdict: top},
                        created_at=now - timedelta(minutes=i),
                    )
                )
                label = labels[i] if i < len(labels) else None
                if label is None:
                    continue
                plot_id = inserted_id(
                    await conn.execute(
                        sa.insert(Plot.__table__).values(
                            plot_type_id=world.plot_type_id,
                            image_path=f"kept/{oid}.png",
                            order_id=oid,
                            kept_reason=KeptReason.UNCONFIRMED,
                            created_at=now,
                        )
                    )
                )
                await conn.execute(
                    sa.insert(Label.__table__).values(
                        plot_id=plot_id,
                        plot_type_id=world.plot_type_id,
                        classification_id=ids[label],
                        labelled_at=now,
                    )
                )
            # An old inference outside the window counts for nothing.
            await conn.execute(
                sa.insert(RunHistory.__table__).values(
                    order_id=str(uuid7()),
                    plot_type_id=world.plot_type_id,
                    status=InferenceStatus.OK,
                    model_id=world.model_id,
                    verdict="NoData",
                    confidence=0.1,
                    created_at=now - timedelta(hours=30),
                )
            )
    finally:
        await engine.dispose()


async def _stored(url: str, plot_type_id: int) -> Any:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(ModelDrift).where(ModelDrift.plot_type_id == plot_type_id)
            )
            return rows.one_or_none()
    finally:
        await engine.dispose()


async def test_a_drifted_model_is_measured_stored_exported_and_flagged(
    db_url: str, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    # Live: unsure (0.5..0.6) and a third Bad; experts disagree with 6 of the 12 labelled.
    rng = np.random.default_rng(5)
    live = [(float(rng.uniform(0.5, 0.6)), "Bad" if i % 3 == 0 else "Good") for i in range(80)]
    labels: list[str | None] = [
        v if i % 2 else ("Good" if v == "Bad" else "Bad") for i, (_, v) in enumerate(live[:12])
    ]
    await _seed(kit, world, live, labels)
    registry = CollectorRegistry()
    engine = make_engine(db_url)
    try:
        monitor = DriftMonitor(engine, SETTINGS, registry)
        figures = {f.plot_type: f for f in await monitor.measure()}
    finally:
        await engine.dispose()
    f = figures[world.plot_type]
    assert f.model_id == world.model_id
    assert f.inferences == 80 and f.test_images == 100
    assert f.psi_top_weight is not None and f.psi_top_weight > 1.0
    assert f.psi_verdicts is not None and 0.1 < f.psi_verdicts
    assert f.drift_score == max(f.psi_top_weight, f.psi_verdicts)
    assert f.labelled == 12 and f.label_agreement == 0.5
    assert f.retrain_suggested and len(f.evidence["reasons"]) == 2

    row = await _stored(db_url, world.plot_type_id)
    assert row is not None
    stored = row
    assert stored.drift_score == pytest.approx(f.drift_score)
    assert stored.retrain_suggested is True
    assert (
        stored.evidence["top_weight_test"][9] > 0 and sum(stored.evidence["top_weight_live"]) == 80
    )

    labels_ = {"plot_type": world.plot_type}
    assert registry.get_sample_value("hydra_keeper_drift_score", labels_) == pytest.approx(
        f.drift_score
    )
    assert registry.get_sample_value("hydra_keeper_label_agreement", labels_) == 0.5
    assert registry.get_sample_value("hydra_keeper_retrain_suggested", labels_) == 1.0


async def test_a_stable_model_is_not_flagged_and_a_retired_one_is_dropped(
    db_url: str, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    rng = np.random.default_rng(8)
    live = [(float(rng.uniform(0.9, 1.0)), "Bad" if i % 10 == 0 else "Good") for i in range(200)]
    await _seed(kit, world, live, [v for _, v in live[:20]])
    registry = CollectorRegistry()
    engine = make_engine(db_url)
    try:
        monitor = DriftMonitor(engine, SETTINGS, registry)
        f = {x.plot_type: x for x in await monitor.measure()}[world.plot_type]
        assert f.drift_score is not None and f.drift_score < 0.1
        assert f.label_agreement == 1.0 and not f.retrain_suggested
        assert f.evidence["reasons"] == []
        # The plot type loses its active model: its figures and series go.
        await kit.execute(
            db_url,
            "UPDATE plot_types SET active_model_id = NULL WHERE id = :p",
            p=world.plot_type_id,
        )
        assert world.plot_type not in {x.plot_type for x in await monitor.measure()}
    finally:
        await engine.dispose()
    assert await _stored(db_url, world.plot_type_id) is None
    labels_ = {"plot_type": world.plot_type}
    assert registry.get_sample_value("hydra_keeper_drift_score", labels_) is None


async def test_a_pass_reads_the_windows_of_many_plot_types_in_a_few_statements(
    own_db_url: str, kit: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass reads its windows a chunk of plot types at a time, not one query per plot
    type (568 of them every pass were most of an idle keeper's CPU), and each window is
    still its plot type's newest inferences of its active model only."""
    from hydra_keeper import drift

    monkeypatch.setattr(drift, "MAX_WINDOW", 3)  # the newest 3 of each window
    worlds = [await kit.make_world(own_db_url) for _ in range(40)]  # more than one chunk
    now = utcnow()
    engine = make_engine(own_db_url)
    try:
        async with engine.begin() as conn:
            for n, w in enumerate(worlds):
                await conn.execute(
                    sa.update(PlotType.__table__)
                    .where(PlotType.__table__.c.id == w.plot_type_id)
                    .values(active_model_id=w.model_id)
                )
                rows = [
                    # n % 5 + 1 recent inferences of the model, newest first: the newest 3
                    # count, with confidences 0.95, 0.85, 0.75 ...
                    {"model_id": w.model_id, "ago": timedelta(minutes=i), "conf": 0.95 - i / 10}
                    for i in range(n % 5 + 1)
                ]
                rows.append(  # another model's, and one outside the window: never counted
                    {"model_id": None, "ago": timedelta(seconds=1), "conf": 0.05}
                )
                rows.append({"model_id": w.model_id, "ago": timedelta(hours=30), "conf": 0.05})
                for r in rows:
                    await conn.execute(
                        sa.insert(RunHistory.__table__).values(
                            order_id=str(uuid7()),
                            plot_type_id=w.plot_type_id,
                            run_number=9000,
                            status=InferenceStatus.OK,
                            model_id=r["model_id"],
                            verdict="Good",
                            confidence=r["conf"],
                            created_at=now - r["ago"],
                        )
                    )
        statements = 0

        def count(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        figures = {f.plot_type: f for f in await DriftMonitor(engine, SETTINGS).measure()}
    finally:
        await engine.dispose()
    for n, w in enumerate(worlds):
        f = figures[w.plot_type]
        assert f.inferences == min(3, n % 5 + 1)
        live = f.evidence["top_weight_live"]
        assert live == [0] * 7 + [1 if n % 5 >= 2 else 0, 1 if n % 5 >= 1 else 0, 1]
    # Two chunks of 32: the active plot types, then per chunk the test splits (two), the
    # windows and the labels; then the delete and the upsert. Not 40 window queries.
    assert statements <= 12, statements
