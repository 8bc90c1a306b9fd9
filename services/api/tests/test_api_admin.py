"""Users, news, plot types, log, status, summary, the front end, errors and the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from typer.testing import CliRunner

from hydra_common.db.schema import (
    AuditLog,
    InferenceStatus,
    Role,
    RunHistory,
    RunVerdictCount,
    ServiceStatus,
    StageHourly,
    User,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_common.stagestats import hourly_rows
from hydra_testsupport.rows import add_logged


async def test_user_management_is_admin_only_and_audited(api: Any) -> None:
    pt = await api.plot_type()
    dev = await api.as_role(Role.DEVELOPER)
    name = api.unique("newuser")
    body = {"username": name, "role": "labeler", "password": "a long password"}
    assert (await dev.post("/api/users", json=body)).status_code == 403
    assert (await dev.get("/api/users")).status_code == 403
    admin = await api.as_role(Role.ADMIN)
    r = await admin.post("/api/users", json=body)
    assert r.status_code == 201 and r.json()["has_password"] is True
    uid = r.json()["id"]
    assert (await admin.post("/api/users", json=body)).status_code == 409
    bad = {"username": "no spaces allowed", "role": "viewer"}
    assert (await admin.post("/api/users", json=bad)).status_code == 422
    r = await admin.put(f"/api/users/{uid}/permissions", json={"plot_types": [pt.name]})
    assert r.status_code == 200 and r.json()["permissions"] == [pt.name]
    r = await admin.put(f"/api/users/{uid}/permissions", json={"plot_types": ["nope"]})
    assert r.status_code == 422
    r = await admin.patch(f"/api/users/{uid}", json={"role": "expert"})
    assert r.status_code == 200 and r.json()["role"] == "expert"
    page = await admin.get("/api/users", params={"limit": 500})
    assert name in [u["username"] for u in page.json()["items"]]
    me = (await admin.get("/api/auth/me")).json()
    r = await admin.patch(f"/api/users/{me['id']}", json={"role": "viewer"})
    assert r.status_code == 422  # no demoting oneself
    audit = await admin.get("/api/audit", params={"entity": "user", "limit": 10})
    actions = [(a["action"], a["entity_id"]) for a in audit.json()["items"]]
    assert ("update", str(uid)) in actions and ("set_permissions", str(uid)) in actions
    change = next(a for a in audit.json()["items"] if a["action"] == "update")
    assert change["before"]["role"] == "labeler" and change["after"]["role"] == "expert"


async def test_news_roles_and_expiry(api: Any) -> None:
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post("/api/news", json={"title": "x"})).status_code == 403
    liaison = await api.as_role(Role.LIAISON)
    title = api.unique("beam")
    r = await liaison.post("/api/news", json={"title": title, "severity": "warning"})
    assert r.status_code == 201
    nid = r.json()["id"]
    expired = (utcnow() - timedelta(hours=1)).isoformat()
    await liaison.post("/api/news", json={"title": title + "-old", "expires_at": expired})
    titles = [n["title"] for n in (await api.client.get("/api/news")).json()["items"]]
    assert title in titles and title + "-old" not in titles
    assert (await viewer.delete(f"/api/news/{nid}")).status_code == 403
    assert (await liaison.delete(f"/api/news/{nid}")).status_code == 200
    assert (await liaison.delete(f"/api/news/{nid}")).status_code == 404


async def test_plot_types_listing_and_admin_update(api: Any) -> None:
    pt = await api.plot_type(detector=api.unique("DET"))
    r = await api.client.get("/api/plot-types", params={"detector": pt.detector})
    [item] = r.json()["items"]
    assert item["labels"] == ["Good", "Bad", "NoData"] and item["plots_kept"] == 0
    expert = await api.as_role(Role.EXPERT, (pt,))
    assert (
        await expert.patch(f"/api/plot-types/{pt.id}", json={"ignored": True})
    ).status_code == 403
    admin = await api.as_role(Role.ADMIN)
    r = await admin.patch(f"/api/plot-types/{pt.id}", json={"collect_percent": 101})
    assert r.status_code == 422
    r = await admin.patch(f"/api/plot-types/{pt.id}", json={"ignored": True, "detector": "TOF"})
    assert r.status_code == 200 and r.json()["ignored"] is True and r.json()["detector"] == "TOF"
    assert (await api.client.get(f"/api/plot-types/{pt.id}")).json()["detector"] == "TOF"
    assert (await api.client.get("/api/plot-types/999999999")).status_code == 404
    async with api.session() as s:
        entry = await s.scalar(
            sa.select(AuditLog).where(
                AuditLog.entity == "plot_type", AuditLog.entity_id == str(pt.id)
            )
        )
        assert entry is not None and entry.before == {"ignored": False, "detector": pt.detector}
    classes = (await api.client.get("/api/classifications")).json()["items"]
    assert {"name": "Bad", "color": "#d62828"}.items() <= next(
        c for c in classes if c["name"] == "Bad"
    ).items()


async def test_log_groups_by_detector(api: Any) -> None:
    det = api.unique("LOGDET")
    pt = await api.plot_type(detector=det)
    async with api.session() as s:
        for i, (verdict, confirmed, transition) in enumerate(
            [("Bad", True, True), ("Good", False, False), ("Bad", True, False)]
        ):
            rh = RunHistory(
                order_id=uuid7(),
                plot_type_id=pt.id,
                status=InferenceStatus.OK,
                verdict=verdict,
                confirmed=confirmed,
                run_number=10,
                chunk=i,
            )
            await add_logged(s, rh, transition=transition)
        old = RunHistory(
            order_id=uuid7(), plot_type_id=pt.id, status=InferenceStatus.OK, verdict="Bad"
        )
        await add_logged(s, old, created_at=utcnow() - timedelta(hours=30))
        await s.commit()
    r = await api.client.get("/api/log", params={"detector": det})
    body = r.json()
    assert body["total"] == 3 and [g["detector"] for g in body["groups"]] == [det]
    entries = body["groups"][0]["entries"]
    assert [e["chunk"] for e in entries] == [2, 1, 0]  # newest first
    assert [e["transition"] for e in entries] == [False, False, True]
    only = await api.client.get("/api/log", params={"detector": det, "transitions_only": True})
    assert only.json()["total"] == 1
    wide = await api.client.get("/api/log", params={"detector": det, "hours": 48})
    assert wide.json()["total"] == 4


async def test_status_and_summary(api: Any) -> None:
    pt = await api.plot_type()
    instance = api.unique("keeper")
    async with api.session() as s:
        s.add(ServiceStatus(service="keeper", instance=instance, details={"queue": 3}))
        stage_times = [{"predict": 0.02 * (i + 1), "keep": 0.001} for i in range(4)]
        s.add_all(
            RunHistory(
                order_id=uuid7(),
                plot_type_id=pt.id,
                status=InferenceStatus.OK,
                verdict="Bad",
                run_number=424242,
                stage_seconds=stages,
            )
            for stages in stage_times
        )
        # The Status page reads the hourly figures the keeper adds at every commit.
        s.add_all(
            StageHourly(**row)
            for row in hourly_rows((utcnow(), 424242, stages) for stages in stage_times)
        )
        # ... and the Summary page its verdicts per run.
        s.add(RunVerdictCount(run_number=424242, verdict="Bad", count=4))
        await s.commit()
    st = (await api.client.get("/api/status")).json()
    svc = next(x for x in st["services"] if x["instance"] == instance)
    assert svc["alive"] is True and svc["details"] == {"queue": 3}
    predict = next(x for x in st["stages"] if x["stage"] == "predict")
    assert predict["count"] >= 4 and sum(predict["counts"]) == predict["count"]
    run = next(x for x in st["runs"] if x["run_number"] == 424242)
    assert run["inferences"] == 4 and abs(run["mean_seconds"]["predict"] - 0.05) < 1e-9
    assert sum(p["count"] for p in st["throughput"]) >= 4
    summary = (await api.client.get("/api/summary")).json()
    assert summary["total_analysed"] >= 4 and summary["runs_with_bad"] >= 1
    assert summary["plot_types"] >= 1 and summary["hall"] == api.settings.hall


async def test_frontend_not_built_and_spa_fallback(
    api: Any, api_factory: Any, tmp_path: Path
) -> None:
    r = await api.client.get("/")
    assert r.status_code == 200 and "not built" in r.text
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>hydra app</html>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    (static / "favicon.ico").write_bytes(b"ico")
    built = await api_factory(static_dir=str(static))
    assert "hydra app" in (await built.client.get("/")).text
    assert "hydra app" in (await built.client.get("/labeler/some/page")).text
    assert (await built.client.get("/assets/app.js")).text == "console.log(1)"
    assert (await built.client.get("/favicon.ico")).content == b"ico"
    assert "hydra app" in (await built.client.get("/../../etc/passwd")).text
    r = await built.client.get("/api/no-such-endpoint")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"


async def test_unexpected_errors_get_a_generic_500(api: Any) -> None:
    app: FastAPI = api.app

    @app.get("/api/test-boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    async with client:
        r = await client.get("/api/test-boom")
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert "secret" not in r.text


def test_cli_user_add(sqlite_url: str, monkeypatch: Any) -> None:
    import typer

    from hydra_api.cli import register

    app = typer.Typer()
    register(app)
    monkeypatch.setenv("HYDRA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    r = runner.invoke(app, ["user", "add", "alice", "--role", "expert", "--password", "pw-long-1"])
    assert r.exit_code == 0, r.output
    assert "created as expert" in r.output
    r = runner.invoke(app, ["user", "add", "alice", "--role", "admin"])
    assert r.exit_code == 0 and "updated as admin" in r.output
    r = runner.invoke(app, ["user", "add", "bob", "--password", "short"])
    assert r.exit_code != 0

    import asyncio

    from hydra_common.db.engine import make_engine, make_sessionmaker

    async def check() -> User | None:
        engine = make_engine(sqlite_url)
        async with make_sessionmaker(engine)() as s:
            user = await s.scalar(sa.select(User).where(User.username == "alice"))
        await engine.dispose()
        return user

    user = asyncio.run(check())
    assert user is not None and user.role == Role.ADMIN and user.password_hash
