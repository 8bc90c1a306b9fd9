"""The monitoring domain functions, called directly (no HTTP): the log's pages by detector,
the status figures, run conditions, the histogram quantile and the summary's figures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from hydra_api.common import Pagination
from hydra_api.domain import monitoring
from hydra_api.models import RunConditionIn
from hydra_common.db.schema import (
    AuditLog,
    MonitoringLog,
    Role,
    RunVerdictCount,
    StageHourly,
    utcnow,
)
from hydra_common.errors import NotFound
from hydra_common.stagestats import INFERENCES, STAGE_EDGES, hour_of


def _run_number() -> int:
    """A run number above any other test's (the status page lists the highest 200 runs)."""
    return 2**40 + uuid.uuid4().int % 2**30


def test_quantile_interpolates_within_its_bin() -> None:
    counts = [0] * (len(STAGE_EDGES) - 1)
    counts[3] = 4
    lo, hi = STAGE_EDGES[3], STAGE_EDGES[4]
    assert monitoring.quantile(counts, 0.5) == pytest.approx(lo + (hi - lo) / 2)
    assert monitoring.quantile(counts, 1.0) == pytest.approx(hi)
    assert monitoring.quantile([0] * len(counts), 0.5) == 0.0


async def test_the_summary_counts_the_verdicts_per_run_at_every_visit(api: Any) -> None:
    """The run history's figures come from ``run_verdicts`` (what the keeper keeps), counted
    at every visit: rows added a moment ago, and a label an admin has just made an alarm,
    count at once; a plot type added a moment ago too (a browser test saw a count half a
    minute old when the figures were cached)."""
    admin = await api.as_role(Role.ADMIN)
    glitch = api.unique("Glitch").replace("_", "")[:32]
    created = await admin.post("/api/classifications", json={"name": glitch, "alarm": False})
    assert created.status_code == 201, created.text
    first = (await api.client.get("/api/summary")).json()
    runs = [_run_number() for _ in range(3)]
    await api.add(
        RunVerdictCount(run_number=runs[0], verdict="Bad", count=2),
        RunVerdictCount(run_number=runs[0], verdict="Good", count=3),
        RunVerdictCount(run_number=runs[1], verdict="Good", count=5),
        RunVerdictCount(run_number=runs[2], verdict=glitch, count=1),
    )
    await api.plot_type()
    second = (await api.client.get("/api/summary")).json()
    assert second["total_analysed"] == first["total_analysed"] + 11
    assert second["runs_with_bad"] == first["runs_with_bad"] + 1  # Bad is an alarm; Good not
    assert second["plot_types"] == first["plot_types"] + 1
    made_alarm = await admin.patch(
        f"/api/classifications/{created.json()['id']}", json={"alarm": True}
    )
    assert made_alarm.status_code == 200, made_alarm.text
    third = (await api.client.get("/api/summary")).json()
    assert third["runs_with_bad"] == second["runs_with_bad"] + 1
    assert third["total_analysed"] == second["total_analysed"]


async def test_log_pages_run_across_detectors(api: Any) -> None:
    det_a, det_b = api.unique("detA"), api.unique("detB")
    pa = await api.plot_type(detector=det_a)
    pb = await api.plot_type(detector=det_b)
    await api.add(
        *(MonitoringLog(plot_type_id=pa.id, run_number=7, chunk=i, verdict="Bad") for i in (1, 2)),
        MonitoringLog(plot_type_id=pb.id, run_number=7, chunk=3, verdict="Bad", transition=True),
    )
    async with api.session() as s:
        first = await monitoring.log_page(s, Pagination(limit=2, offset=0), 1, det_a)
        assert first.total == 2 and first.next is None
        assert [g.detector for g in first.groups] == [det_a]
        assert [e.chunk for e in first.groups[0].entries] == [2, 1]  # newest first
        only = await monitoring.log_page(s, Pagination(limit=5, offset=0), 1, det_b, True)
        assert only.total == 1 and only.groups[0].entries[0].transition is True
        assert only.groups[0].entries[0].color != ""


async def test_status_sums_the_hourly_figures_per_run(api: Any) -> None:
    run = _run_number()
    hour = hour_of(utcnow())
    await api.add(
        StageHourly(hour=hour, run_number=run, stage="predict", bin=5, count=3, seconds_sum=0.3),
        StageHourly(hour=hour, run_number=run, stage=INFERENCES, bin=0, count=3),
    )
    async with api.session() as s:
        status = await monitoring.status(s, 2)
    mine = [r for r in status.runs if r.run_number == run]
    assert len(mine) == 1 and mine[0].inferences == 3
    assert mine[0].mean_seconds["predict"] == pytest.approx(0.1)
    assert any(st.stage == "predict" and st.count >= 3 for st in status.stages)
    assert sum(p.count for p in status.throughput) >= 3


async def test_run_conditions_record_list_and_delete(api: Any) -> None:
    run = _run_number()
    admin = await api.user(Role.ADMIN)
    async with api.session() as s:
        out = await monitoring.record_run_conditions(
            s, RunConditionIn(run_number=run, beam_current=1.5, run_type="physics"), "script"
        )
        page = await monitoring.run_conditions(s, Pagination(limit=10, offset=0), run)
        assert [r.id for r in page.items] == [out.id] and page.total == 1
        await monitoring.delete_run_condition(s, out.id, admin)
        assert (await monitoring.run_conditions(s, Pagination(limit=10, offset=0), run)).total == 0
        with pytest.raises(NotFound):
            await monitoring.delete_run_condition(s, out.id, admin)
        audited = await s.scalars(
            sa.select(AuditLog.action).where(
                AuditLog.entity == "run_condition", AuditLog.entity_id == str(out.id)
            )
        )
        assert sorted(audited) == ["delete", "record"]
