"""The beam state the Run page shows (same rule and threshold as the keeper), and
acknowledging an alarm (crew only, audited, in the monitoring log)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hydra_common.db.schema import AlarmState, AuditLog, BeamState, MonitoringLog, Role, utcnow


async def test_beam_from_run_conditions_uses_the_one_threshold(
    api_factory: Any, sqlite_url: str
) -> None:
    api = await api_factory(database_url=sqlite_url, beam_current_threshold=5.0)
    dev = await api.as_role(Role.DEVELOPER)
    empty = (await dev.get("/api/beam")).json()
    assert (empty["source"], empty["state"], empty["alarms"]) == ("none", "unknown", True)
    assert empty["threshold"] == 5.0 and empty["unknown_policy"] == "alarm"

    # 3 nA is above 0 but not above the threshold: beam off, as the keeper sees it.
    await dev.post("/api/run-conditions", json={"run_number": 7, "beam_current": 3.0})
    off = (await dev.get("/api/beam")).json()
    assert (off["source"], off["state"], off["alarms"], off["reason"]) == (
        "rest",
        "off",
        False,
        "beam_off",
    )
    body = {"run_number": 8, "beam_current": 7.0, "run_type": "Cosmics"}
    await dev.post("/api/run-conditions", json=body)
    cosmics = (await dev.get("/api/beam")).json()
    assert (cosmics["state"], cosmics["special"], cosmics["alarms"]) == ("on", True, False)
    assert cosmics["run_number"] == 8 and cosmics["reason"] == "special_run"


async def test_beam_from_epics_goes_unknown_when_silent(api_factory: Any, sqlite_url: str) -> None:
    api = await api_factory(
        database_url=sqlite_url,
        epics_beam_current_pv="HALL:BEAM:CURRENT",
        epics_silence_seconds=30,
        beam_unknown_policy="suppress",
    )
    never = (await api.client.get("/api/beam")).json()
    assert (never["source"], never["state"], never["reason"]) == (
        "epics",
        "unknown",
        "beam_unknown",
    )
    now = utcnow()
    await api.add(
        BeamState(id=1, beam_current=150.0, run_number=9001, run_type="physics", updated_at=now)
    )
    on = (await api.client.get("/api/beam")).json()
    assert (on["state"], on["run_number"], on["alarms"]) == ("on", 9001, True)
    async with api.session() as s:
        await s.execute(sa.update(BeamState).values(updated_at=now - timedelta(seconds=60)))
        await s.commit()
    silent = (await api.client.get("/api/beam")).json()
    assert (silent["state"], silent["alarms"]) == ("unknown", False)


async def test_crew_acknowledges_a_raised_alarm_once_audited_and_logged(api: Any) -> None:
    pt = await api.plot_type()
    await api.add(AlarmState(plot_type_id=pt.id, state="raised", raised_at=utcnow(), recent=[2, 2]))
    url = f"/api/alarms/{pt.name}/acknowledge"
    assert (await api.client.post(url)).status_code == 401
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post(url)).status_code == 403
    listed = (await viewer.get("/api/alarms")).json()
    assert [a["state"] for a in listed if a["plot_type"] == pt.name] == ["raised"]

    labeler = await api.as_role(Role.LABELER)
    r = await labeler.post(url)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acknowledged_by"].startswith("labeler")
    assert (await labeler.post(url)).status_code == 409
    assert (await labeler.post("/api/alarms/no_such_plot/acknowledge")).status_code == 404
    listed = (await viewer.get("/api/alarms")).json()
    assert [a["state"] for a in listed if a["plot_type"] == pt.name] == ["acknowledged"]

    async with api.session() as s:
        audit = (
            await s.scalars(
                sa.select(AuditLog).where(AuditLog.entity == "alarm", AuditLog.entity_id == pt.name)
            )
        ).all()
        logged = (
            await s.scalars(sa.select(MonitoringLog).where(MonitoringLog.plot_type_id == pt.id))
        ).all()
    assert [a.action for a in audit] == ["acknowledge"]
    assert [(m.event, m.actor, m.run_history_id) for m in logged] == [
        ("acknowledge", r.json()["acknowledged_by"], None)
    ]
