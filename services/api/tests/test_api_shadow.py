"""Shadow evaluation through the API: who may start and stop it, the figures it returns,
the disagreements as images, and one-click promotion gated by the rule; on MariaDB and on
SQLite."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hydra_common.db.schema import (
    AuditLog,
    KeptReason,
    Label,
    Model,
    ModelShadow,
    Plot,
    PlotType,
    Role,
    ShadowHistory,
)
from hydra_common.ids import uuid7


@pytest.fixture(params=["mysql", "sqlite"])
async def any_api(request: pytest.FixtureRequest, api_factory: Any) -> Any:
    """The app on the shared MariaDB database, or on a SQLite database of its own."""
    if request.param == "sqlite":
        return await api_factory(database_url=request.getfixturevalue("sqlite_url"))
    return await api_factory()


async def _seed(api: Any) -> tuple[PlotType, Model, Model]:
    pt = await api.plot_type(labels=("Good", "Bad"))
    v1, v2 = await api.active_and_candidate(pt)
    return pt, v1, v2


async def _verdicts(api: Any, pt: PlotType, v1: Model, v2: Model, pairs: list[Any]) -> None:
    """Shadow rows as the keeper writes them: (shadow, active, expert label or None)."""
    bad = await api.class_id("Bad")
    for verdict, active, label in pairs:
        oid = uuid7()
        path = f"shadow/{pt.name}/{oid}.png" if verdict != active else None
        await api.add(
            ShadowHistory(
                order_id=oid,
                model_id=v2.id,
                plot_type_id=pt.id,
                active_model_id=v1.id,
                run_number=7,
                verdict=verdict,
                confidence=0.9,
                active_verdict=active,
                agrees=verdict == active,
                seconds_per_image=0.004,
                active_seconds_per_image=0.003,
                image_path=path,
            )
        )
        if label == "Bad":
            plot = Plot(
                plot_type_id=pt.id,
                image_path=f"plots/{oid}.png",
                order_id=oid,
                kept_reason=KeptReason.UNCONFIRMED,
            )
            await api.add(plot)
            await api.add(Label(plot_id=plot.id, plot_type_id=pt.id, classification_id=bad))


async def test_start_read_stop_and_who_may(any_api: Any) -> None:
    api = any_api
    pt, v1, v2 = await _seed(api)
    url = f"/api/models/{v2.id}/shadow"
    assert (await api.client.post(url, json={})).status_code == 401
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post(url, json={})).status_code == 403
    outsider = await api.as_role(Role.EXPERT, (await api.plot_type(),))
    assert (await outsider.post(url, json={})).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    assert (await expert.post(url, json={"min_agreement": 2})).status_code == 422
    r = await expert.post(url, json={"min_images": 3, "min_agreement": 0.6})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["in_shadow"] is True and body["active_model_id"] == v1.id
    assert (body["min_images"], body["min_agreement"], body["images"]) == (3, 0.6, 0)
    assert body["promotable"] is False and "3 images" in body["rule_problem"]
    assert (await expert.post(url, json={})).status_code == 409  # already in shadow
    assert (await expert.post(f"/api/models/{v1.id}/shadow", json={})).status_code == 409
    got = (await viewer.get(url)).json()
    assert got["in_shadow"] is True and got["started_by"] == body["started_by"]
    assert (await viewer.delete(url)).status_code == 403
    r = await expert.delete(url)
    assert r.status_code == 200 and r.json()["in_shadow"] is False
    assert (await expert.delete(url)).status_code == 409
    assert (await viewer.get("/api/models/999999999/shadow")).status_code == 404
    async with api.session() as s:
        actions = (
            await s.scalars(
                sa.select(AuditLog.action)
                .where(AuditLog.entity == "model", AuditLog.entity_id == str(v2.id))
                .order_by(AuditLog.id)
            )
        ).all()
    assert list(actions) == ["shadow_start", "shadow_stop"]


async def test_figures_disagreements_and_promotion_by_the_rule(any_api: Any) -> None:
    api = any_api
    pt, v1, v2 = await _seed(api)
    dev = await api.as_role(Role.DEVELOPER)
    url = f"/api/models/{v2.id}/shadow"
    assert (await dev.post(url, json={"min_images": 4, "min_agreement": 0.7})).status_code == 201
    await _verdicts(
        api,
        pt,
        v1,
        v2,
        [("Good", "Good", None), ("Bad", "Good", "Bad"), ("Bad", "Bad", "Bad")],
    )
    body = (await dev.get(url)).json()
    assert (body["images"], body["compared"], body["agreements"]) == (3, 3, 2)
    assert body["agreement"] == pytest.approx(2 / 3)
    assert body["labelled"] == 2 and body["label_agreement"] == 1.0
    assert body["active_label_agreement"] == 0.5
    assert body["seconds_per_image"] == pytest.approx(0.004)
    assert body["active_seconds_per_image"] == pytest.approx(0.003)
    [shown] = body["disagreements"]
    assert (shown["shadow_verdict"], shown["active_verdict"], shown["human_label"]) == (
        "Bad",
        "Good",
        "Bad",
    )
    assert shown["image_url"].startswith(f"/api/files/shadow/{pt.name}/")
    assert body["promotable"] is False
    r = await dev.post(f"/api/models/{v2.id}/promote")
    assert r.status_code == 409 and "4 images" in r.json()["detail"], r.text
    await _verdicts(api, pt, v1, v2, [("Good", "Good", None)])  # 3 of 4 = 0.75
    body = (await dev.get(url)).json()
    assert body["promotable"] is True and body["rule_problem"] == ""
    r = await dev.post(f"/api/models/{v2.id}/promote")
    assert r.status_code == 200 and r.json()["active"] is True
    after = (await dev.get(url)).json()
    assert after["in_shadow"] is False and after["images"] == 4  # the record stays
    async with api.session() as s:
        assert await s.get(ModelShadow, pt.id) is None
        assert (await s.get(PlotType, pt.id, populate_existing=True)).active_model_id == v2.id
