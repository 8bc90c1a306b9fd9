"""The hall's labels through the API: list, create, change, a plot type's valid labels."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hydra_common.db.schema import AuditLog, KeptReason, Label, Plot, Role


def _name(api: Any) -> str:
    name: str = api.unique("Glitch").replace("_", "")[:32]
    return name


async def _audits(api: Any, entity: str, entity_id: int) -> list[tuple[str, dict[str, Any]]]:
    async with api.session() as s:
        rows = await s.execute(
            sa.select(AuditLog.action, AuditLog.after)
            .where(AuditLog.entity == entity, AuditLog.entity_id == str(entity_id))
            .order_by(AuditLog.id)
        )
        return [(a, dict(b)) for a, b in rows.tuples()]


async def test_admin_creates_and_changes_a_label(api: Any) -> None:
    admin = await api.as_role(Role.ADMIN)
    name = _name(api)
    r = await admin.post("/api/classifications", json={"name": name, "alarm": True})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["alarm"] is True and created["trainable"] is True
    assert created["color"].startswith("#") and len(created["color"]) == 7  # picked for it
    listed = (await api.client.get("/api/classifications")).json()["items"]
    assert [c for c in listed if c["name"] == name] == [created]
    r = await admin.patch(
        f"/api/classifications/{created['id']}",
        json={"color": "#ABCDEF", "alarm": False, "description": "a glitch"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["color"], r.json()["alarm"], r.json()["name"]) == ("#abcdef", False, name)
    assert await _audits(api, "classification", created["id"]) == [
        ("create", created),
        ("update", {"color": "#abcdef", "alarm": False, "description": "a glitch"}),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "a b"},
        {"name": "9lives"},
        {"name": "x" * 33},
        {"name": "Bad/Good"},
        {"name": "Ok", "color": "red"},
        {"name": "Ok", "color": "#12345"},
        {"name": "NoModel"},
        {"name": "no_model"},
    ],
)
async def test_invalid_labels_are_refused(api: Any, body: dict[str, Any]) -> None:
    admin = await api.as_role(Role.ADMIN)
    r = await admin.post("/api/classifications", json=body)
    assert r.status_code == 422, r.text


async def test_duplicates_are_refused_ignoring_case(api: Any) -> None:
    admin = await api.as_role(Role.ADMIN)
    for name in ("bad", "BAD", "Hot_Channel", "hot-channel"):
        r = await admin.post("/api/classifications", json={"name": name})
        assert r.status_code == 409, r.text
        assert "already exists" in r.json()["detail"]


async def test_only_admins_change_labels(api: Any) -> None:
    name = _name(api)
    for role in (Role.DEVELOPER, Role.EXPERT, Role.VIEWER):
        client = await api.as_role(role)
        assert (await client.post("/api/classifications", json={"name": name})).status_code == 403
        r = await client.patch(f"/api/classifications/{await api.class_id('Bad')}", json={})
        assert r.status_code == 403
    assert (await api.client.post("/api/classifications", json={"name": name})).status_code == 401
    names = [c["name"] for c in (await api.client.get("/api/classifications")).json()["items"]]
    assert name not in names


async def test_a_plot_types_labels_are_edited_and_used_ones_stay(api: Any) -> None:
    admin = await api.as_role(Role.ADMIN)
    name = _name(api)
    assert (await admin.post("/api/classifications", json={"name": name})).status_code == 201
    pt = await api.plot_type(labels=("Good", "Bad", "NoData"))
    url = f"/api/plot-types/{pt.id}/labels"
    r = await admin.put(url, json={"labels": ["Good", "Bad", "NoData", name.lower()]})
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == ["Good", "Bad", "NoData", name]
    # An image labelled Bad keeps Bad valid.
    plot = Plot(plot_type_id=pt.id, image_path="x.png", kept_reason=KeptReason.BAD)
    await api.add(plot)
    await api.add(
        Label(plot_id=plot.id, plot_type_id=pt.id, classification_id=await api.class_id("Bad"))
    )
    r = await admin.put(url, json={"labels": ["Good", name]})
    assert r.status_code == 409 and "Bad (1 image)" in r.json()["detail"], r.text
    r = await admin.put(url, json={"labels": ["Good", "Bad", "Nonexistent"]})
    assert r.status_code == 422
    r = await admin.put(url, json={"labels": ["Good", "Bad"]})
    assert r.status_code == 200 and r.json()["labels"] == ["Good", "Bad"]
    audits = await _audits(api, "plot_type", pt.id)
    assert [a for a, _ in audits] == ["labels", "labels"]
    assert audits[1][1]["removed"] == ["NoData", name]
    expert = await api.as_role(Role.EXPERT, (pt,))
    assert (await expert.put(url, json={"labels": ["Good"]})).status_code == 403
    # The labeler may now paint with the new label only where it is valid.
    await admin.put(url, json={"labels": ["Good", "Bad", name]})
    other = Plot(plot_type_id=pt.id, image_path="y.png", kept_reason=KeptReason.BAD)
    await api.add(other)
    r = await admin.post("/api/labels", json=[{"plot_id": other.id, "label": name}])
    assert r.status_code == 200, r.text
