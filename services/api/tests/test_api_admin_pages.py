"""What the admin pages call: permission grants and revokes, the audit log's filters and
keyset pages, news editing and expiry, deleting run conditions; and ``hydra user list|
disable|enable|grant|revoke``. On MariaDB (the API) and SQLite (the command line)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from hydra_api.cli import register
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import AuditLog, Plot, PlotType, Role, User, utcnow

pytestmark = pytest.mark.mysql


async def test_a_grant_lets_a_labeller_label_and_a_revoke_stops_it(api: Any) -> None:
    pt = await api.plot_type()
    plot = Plot(plot_type_id=pt.id, image_path="plots/x.png", kept_reason="bad")
    await api.add(plot)
    labeller = await api.user(Role.LABELER)
    labeller_client = api.new_client()
    signer = api.app.state.hydra.signer
    token = signer.issue(labeller.id, labeller.password_hash, 3600)
    csrf = signer.csrf_token(signer.verify(token).nonce)
    labeller_client.cookies.update({"hydra_session": token, "hydra_csrf": csrf})
    labeller_client.headers["X-CSRF-Token"] = csrf
    label = [{"plot_id": plot.id, "label": "Bad"}]
    assert (await labeller_client.post("/api/labels", json=label)).status_code == 403

    admin = await api.as_role(Role.ADMIN)
    url = f"/api/users/{labeller.id}/permissions/{pt.id}"
    r = await admin.put(url)
    assert r.status_code == 200 and r.json()["permissions"] == [pt.name]
    assert (await admin.put(url)).json()["permissions"] == [pt.name]  # idempotent
    assert (await labeller_client.post("/api/labels", json=label)).status_code == 200

    r = await admin.delete(url)
    assert r.status_code == 200 and r.json()["permissions"] == []
    label = [{"plot_id": plot.id, "label": "Good"}]
    assert (await labeller_client.post("/api/labels", json=label)).status_code == 403
    assert (await admin.put(f"/api/users/{labeller.id}/permissions/999999")).status_code == 404

    dev = await api.as_role(Role.DEVELOPER)
    assert (await dev.put(url)).status_code == 403
    audit = await admin.get("/api/audit", params={"entity": "user", "entity_id": str(labeller.id)})
    actions = [a["action"] for a in audit.json()["items"]]
    assert actions == ["revoke", "grant"]  # newest first; the repeated grant changed nothing


async def test_the_audit_log_filters_and_pages_by_keyset(api: Any) -> None:
    who = api.unique("auditor")
    now = utcnow()
    await api.add(
        *(
            AuditLog(
                username=who,
                action="update" if i % 2 else "create",
                entity=who,  # a kind of its own: other tests query plot_type entries by id
                entity_id=str(i),
                at=now - timedelta(minutes=10 - i),
            )
            for i in range(7)
        )
    )
    admin = await api.as_role(Role.ADMIN)
    seen: list[str] = []
    params: dict[str, Any] = {"username": who, "limit": 3}
    pages = 0
    while True:
        page = (await admin.get("/api/audit", params=params)).json()
        pages += 1
        seen += [a["entity_id"] for a in page["items"]]
        if page["next_before_id"] is None:
            break
        params["before_id"] = page["next_before_id"]
    assert seen == ["6", "5", "4", "3", "2", "1", "0"] and pages == 3
    r = await admin.get("/api/audit", params={"username": who, "action": "update"})
    assert [a["entity_id"] for a in r.json()["items"]] == ["5", "3", "1"]
    since = (now - timedelta(minutes=6, seconds=30)).isoformat()
    until = (now - timedelta(minutes=4, seconds=30)).isoformat()
    r = await admin.get("/api/audit", params={"username": who, "since": since, "until": until})
    assert [a["entity_id"] for a in r.json()["items"]] == ["5", "4"]
    assert (await admin.get("/api/audit", params={"before_id": 0})).status_code == 422
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.get("/api/audit")).status_code == 403


async def test_news_can_be_expired_edited_and_listed_with_expired(api: Any) -> None:
    liaison = await api.as_role(Role.LIAISON)
    title = api.unique("quench")
    nid = (await liaison.post("/api/news", json={"title": title})).json()["id"]
    r = await liaison.patch(f"/api/news/{nid}", json={"expires_at": utcnow().isoformat()})
    assert r.status_code == 200 and r.json()["expires_at"] is not None
    current = [n["title"] for n in (await api.client.get("/api/news")).json()["items"]]
    assert title not in current
    everything = await liaison.get("/api/news", params={"include_expired": True, "limit": 500})
    assert title in [n["title"] for n in everything.json()["items"]]
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.get("/api/news", params={"include_expired": True})).status_code == 403
    r = await liaison.patch(f"/api/news/{nid}", json={"expires_at": None, "severity": "critical"})
    assert r.json()["expires_at"] is None and r.json()["severity"] == "critical"
    assert r.json()["title"] == title
    assert (await viewer.patch(f"/api/news/{nid}", json={"title": "x"})).status_code == 403
    admin = await api.as_role(Role.ADMIN)
    audit = await admin.get("/api/audit", params={"entity": "news", "entity_id": str(nid)})
    assert [a["action"] for a in audit.json()["items"]] == ["update", "update", "create"]


async def test_run_conditions_can_be_deleted_by_admins_only(api: Any) -> None:
    dev = await api.as_role(Role.DEVELOPER)
    r = await dev.post("/api/run-conditions", json={"run_number": 4242, "beam_current": 7.5})
    rid = r.json()["id"]
    assert (await dev.delete(f"/api/run-conditions/{rid}")).status_code == 403
    admin = await api.as_role(Role.ADMIN)
    assert (await admin.delete(f"/api/run-conditions/{rid}")).status_code == 200
    assert (await admin.delete(f"/api/run-conditions/{rid}")).status_code == 404
    left = await admin.get("/api/run-conditions", params={"run_number": 4242})
    assert rid not in [c["id"] for c in left.json()["items"]]
    audit = await admin.get("/api/audit", params={"entity": "run_condition", "entity_id": rid})
    [entry] = [a for a in audit.json()["items"] if a["action"] == "delete"]
    assert entry["before"]["beam_current"] == 7.5


def test_cli_user_list_disable_grant_revoke(sqlite_url: str, monkeypatch: Any) -> None:
    app = typer.Typer()
    register(app)
    monkeypatch.setenv("HYDRA_DATABASE_URL", sqlite_url)

    async def seed() -> None:
        engine = make_engine(sqlite_url)
        async with make_sessionmaker(engine)() as s:
            s.add_all([PlotType(name="CDC_occupancy"), PlotType(name="FCAL_hits")])
            await s.commit()
        await engine.dispose()

    asyncio.run(seed())
    runner = CliRunner()
    assert runner.invoke(app, ["user", "add", "carol", "--role", "labeler"]).exit_code == 0
    r = runner.invoke(app, ["user", "grant", "carol", "CDC_occupancy", "FCAL_hits"])
    assert r.exit_code == 0 and "CDC_occupancy, FCAL_hits" in r.output, r.output
    r = runner.invoke(app, ["user", "grant", "carol", "NoSuchPlot"])
    assert r.exit_code == 1 and "unknown plot types: NoSuchPlot" in r.output
    r = runner.invoke(app, ["user", "list"])
    assert "carol\tlabeler\tactive\tsso\tCDC_occupancy,FCAL_hits" in r.output, r.output
    r = runner.invoke(app, ["user", "revoke", "carol", "FCAL_hits"])
    assert r.exit_code == 0 and "revoked carol: FCAL_hits" in r.output
    assert runner.invoke(app, ["user", "revoke", "carol"]).exit_code != 0  # names or --all
    r = runner.invoke(app, ["user", "disable", "carol"])
    assert r.exit_code == 0 and "carol disabled" in r.output
    r = runner.invoke(app, ["user", "list"])
    assert "carol\tlabeler\tdisabled\tsso\tCDC_occupancy" in r.output
    assert runner.invoke(app, ["user", "revoke", "carol", "--all"]).exit_code == 0
    r = runner.invoke(app, ["user", "disable", "nobody"])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output

    async def check() -> tuple[User | None, list[str]]:
        engine = make_engine(sqlite_url)
        async with make_sessionmaker(engine)() as s:
            user = await s.scalar(sa.select(User).where(User.username == "carol"))
            actions = list(
                await s.scalars(
                    sa.select(AuditLog.action)
                    .where(AuditLog.username == "cli")
                    .order_by(AuditLog.id)
                )
            )
        await engine.dispose()
        return user, actions

    user, actions = asyncio.run(check())
    assert user is not None and not user.active and user.sessions_valid_after is not None
    assert actions == ["create", "grant", "revoke", "update", "revoke"]
