"""Masks of accepted problems through the API: who may set them, the audit, validation,
expiry as the API reports it; on MariaDB and on SQLite."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hydra_common.db.schema import AuditLog, PlotTypeMask, Role, utcnow


@pytest.fixture(params=["mysql", "sqlite"])
async def any_api(request: pytest.FixtureRequest, api_factory: Any) -> Any:
    """The app on the shared MariaDB database, or on a SQLite database of its own."""
    if request.param == "sqlite":
        return await api_factory(database_url=request.getfixturevalue("sqlite_url"))
    return await api_factory()


def _mask(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "x0": 0.1,
        "y0": 0.2,
        "x1": 0.4,
        "y1": 0.9,
        "reason": "dead channel 17, accepted",
        "until_run": 500,
    }
    body.update(kw)
    return body


async def test_masks_authz_and_audit(any_api: Any) -> None:
    api = any_api
    pt = await api.plot_type()
    url = f"/api/plot-types/{pt.id}/masks"
    body = {"masks": [_mask()]}
    assert (await api.client.put(url, json=body)).status_code == 401
    for role in (Role.VIEWER, Role.LABELER, Role.DEVELOPER):
        client = await api.as_role(role, (pt,))
        assert (await client.put(url, json=body)).status_code == 403, role
    outsider = await api.as_role(Role.EXPERT, (await api.plot_type(),))
    assert (await outsider.put(url, json=body)).status_code == 403
    expert = await api.as_role(Role.EXPERT, (pt,))
    r = await expert.put(url, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["plot_type"] == pt.name
    [mask] = out["masks"]
    assert (mask["x0"], mask["y1"], mask["until_run"]) == (0.1, 0.9, 500)
    assert mask["in_force"] is True
    assert mask["created_by"].startswith("expert")
    # Anyone who reads the Run page reads them, one plot type or all.
    viewer = await api.as_role(Role.VIEWER)
    got = (await viewer.get(url)).json()
    assert [m["reason"] for m in got["masks"]] == ["dead channel 17, accepted"]
    listed = {p["plot_type_id"]: p for p in (await viewer.get("/api/masks")).json()}
    assert len(listed[pt.id]["masks"]) == 1
    # An admin replaces them; the audit holds before and after.
    admin = await api.as_role(Role.ADMIN)
    until = (utcnow() + timedelta(days=3)).isoformat()
    two = {"masks": [_mask(until_run=None, until_time=until), _mask(x0=0.5, x1=0.6)]}
    r = await admin.put(url, json=two)
    assert r.status_code == 200, r.text
    assert len(r.json()["masks"]) == 2
    async with api.session() as s:
        rows = (
            await s.scalars(
                sa.select(AuditLog)
                .where(AuditLog.action == "set_masks", AuditLog.entity_id == str(pt.id))
                .order_by(AuditLog.id)
            )
        ).all()
        stored = (
            await s.scalars(sa.select(PlotTypeMask).where(PlotTypeMask.plot_type_id == pt.id))
        ).all()
    assert len(rows) == 2
    assert rows[0].before == {"masks": []}
    assert len(rows[1].before["masks"]) == 1 and len(rows[1].after["masks"]) == 2
    assert len(stored) == 2
    # An empty list removes them all.
    r = await admin.put(url, json={"masks": []})
    assert r.status_code == 200 and r.json()["masks"] == []
    assert (await api.client.put("/api/plot-types/2000000000/masks", json=body)).status_code in (
        401,
        404,
    )
    assert (await admin.put("/api/plot-types/2000000000/masks", json=body)).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        _mask(x0=-0.1),
        _mask(y1=1.5),
        _mask(x0=0.5, x1=0.5),  # empty
        _mask(y0=0.9, y1=0.2),  # upside down
        _mask(reason=""),
        _mask(reason="   "),
        _mask(reason="x" * 300),
        _mask(until_run=None),  # no expiry
        _mask(until_run=-3),
    ],
)
async def test_masks_validation(api: Any, bad: dict[str, Any]) -> None:
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    r = await admin.put(f"/api/plot-types/{pt.id}/masks", json={"masks": [bad]})
    assert r.status_code == 422, r.text
    async with api.session() as s:
        n = await s.scalar(sa.select(sa.func.count()).where(PlotTypeMask.plot_type_id == pt.id))
    assert n == 0
    # The API keeps going: a valid one is accepted next.
    r = await admin.put(f"/api/plot-types/{pt.id}/masks", json={"masks": [_mask()]})
    assert r.status_code == 200


async def test_masks_bounded_count_and_expiry(api: Any) -> None:
    pt = await api.plot_type()
    admin = await api.as_role(Role.ADMIN)
    url = f"/api/plot-types/{pt.id}/masks"
    r = await admin.put(url, json={"masks": [_mask()] * 17})
    assert r.status_code == 422
    past = (utcnow() - timedelta(hours=1)).isoformat()
    r = await admin.put(url, json={"masks": [_mask(until_run=None, until_time=past)]})
    assert r.status_code == 200
    assert r.json()["masks"][0]["in_force"] is False
