"""The labeler: listing plots, applying labels (permissions, validity, history), counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hydra_common.db.schema import (
    AuditLog,
    Label,
    LabelHistory,
    Role,
    utcnow,
)


async def test_labeler_with_permission_labels_and_history_is_written(api: Any) -> None:
    pt = await api.plot_type()
    ps = await api.plots(pt, 3)
    client = await api.as_role(Role.LABELER, (pt,))
    r = await client.post("/api/labels", json=[{"plot_id": p.id, "label": "Good"} for p in ps[:2]])
    assert r.status_code == 200 and r.json() == {"changed": 2, "unchanged": 0}
    # Relabel one, repeat the other: one change, one no-op.
    r = await client.post(
        "/api/labels",
        json=[{"plot_id": ps[0].id, "label": "Bad"}, {"plot_id": ps[1].id, "label": "Good"}],
    )
    assert r.json() == {"changed": 1, "unchanged": 1}
    async with api.session() as s:
        hist = (
            await s.scalars(
                sa.select(LabelHistory)
                .where(LabelHistory.plot_id == ps[0].id)
                .order_by(LabelHistory.id)
            )
        ).all()
        assert [h.new_classification_id for h in hist] == [
            await api.class_id("Good"),
            await api.class_id("Bad"),
        ]
        assert hist[1].old_classification_id == await api.class_id("Good")
        audits = (
            await s.scalars(
                sa.select(AuditLog)
                .where(AuditLog.action == "label")
                .order_by(AuditLog.id.desc())
                .limit(1)
            )
        ).one()
        assert audits.after == {str(ps[0].id): "Bad"} and audits.before == {str(ps[0].id): "Good"}
    listing = await client.get("/api/plots", params={"plot_type": pt.name, "labelled": "true"})
    labels = {p["id"]: p["label"] for p in listing.json()["items"]}
    assert labels == {ps[0].id: "Bad", ps[1].id: "Good"}
    todo = await client.get("/api/plots", params={"plot_type": pt.name, "labelled": "false"})
    assert [p["id"] for p in todo.json()["items"]] == [ps[2].id]


async def test_label_refusals(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    other = await api.plot_type()
    ps = await api.plots(pt, 2)
    theirs = await api.plots(other, 1)
    body = [{"plot_id": ps[0].id, "label": "Good"}]
    assert (await api.client.post("/api/labels", json=body)).status_code == 401
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post("/api/labels", json=body)).status_code == 403
    unpermitted = await api.as_role(Role.LABELER, (other,))
    assert (await unpermitted.post("/api/labels", json=body)).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    # NoData is a shared label but not valid for this plot type.
    r = await expert.post("/api/labels", json=[{"plot_id": ps[0].id, "label": "NoData"}])
    assert r.status_code == 422 and "NoData" in r.json()["detail"]
    # A batch touching a plot type without permission changes nothing at all.
    r = await expert.post(
        "/api/labels",
        json=[{"plot_id": ps[1].id, "label": "Good"}, {"plot_id": theirs[0].id, "label": "Good"}],
    )
    assert r.status_code == 403
    assert (await expert.post("/api/labels", json=[])).status_code == 422
    r = await expert.post("/api/labels", json=[{"plot_id": 2**31 - 1, "label": "Good"}])
    assert r.status_code == 422
    async with api.session() as s:
        n = await s.scalar(
            sa.select(sa.func.count())
            .select_from(Label)
            .where(Label.plot_type_id.in_([pt.id, other.id]))
        )
    assert n == 0
    developer = await api.as_role(Role.DEVELOPER)
    r = await developer.post("/api/labels", json=[{"plot_id": theirs[0].id, "label": "Bad"}])
    assert r.status_code == 200


async def test_editor_filters_and_pagination(api: Any) -> None:
    pt = await api.plot_type()
    ps = await api.plots(pt, 6, run=700)
    admin = await api.as_role(Role.ADMIN)
    await admin.post(
        "/api/labels",
        json=[{"plot_id": p.id, "label": "Bad" if i % 2 else "Good"} for i, p in enumerate(ps)],
    )
    r = await admin.get(
        "/api/plots",
        params={"plot_type": pt.name, "label": "Bad", "run_min": 702, "run_max": 705},
    )
    assert sorted(p["run_number"] for p in r.json()["items"]) == [703, 705]
    page = await admin.get("/api/plots", params={"plot_type": pt.name, "limit": 4})
    assert page.json()["total"] == 6 and page.json()["next"] == 4 and len(page.json()["items"]) == 4
    assert (await admin.get("/api/plots", params={"limit": 501})).status_code == 422
    since = (utcnow() + timedelta(hours=1)).isoformat()
    r = await admin.get("/api/plots", params={"plot_type": pt.name, "since": since})
    assert r.json()["total"] == 0
    assert (await api.client.get("/api/plots")).status_code == 401
    counts = await admin.get("/api/labels/counts", params={"plot_type": pt.name})
    body = counts.json()
    assert body["total_plots"] == 6 and body["unlabelled"] == 0
    assert {c["label"]: c["count"] for c in body["counts"]} == {"Good": 3, "Bad": 3, "NoData": 0}
    board = await admin.get("/api/labels/leaderboard", params={"limit": 500})
    me = (await admin.get("/api/auth/me")).json()["username"]
    entry = next(e for e in board.json()["items"] if e["username"] == me)
    assert entry["labels"] == 6
