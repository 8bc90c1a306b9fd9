"""The "Hydra weights" Grafana dashboard's SQL, run on the real MariaDB server with the
Grafana macros expanded as Grafana's MySQL data source expands them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import InferenceStatus, PlotType, RunHistory

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "helm" / "hydra" / "dashboards" / "weights.json"

pytestmark = pytest.mark.mysql


def grafana_sql(sql: str, plot_types: list[str], start: datetime, end: datetime) -> str:
    """Expand $__timeFilter, '$plot_type' and ${plot_type:sqlstring} like Grafana does."""
    quoted = ",".join("'" + p.replace("'", "''") + "'" for p in plot_types)
    fmt = "%Y-%m-%d %H:%M:%S"
    sql = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        # Grafana sends the range in UTC; Hydra stores UTC.
        lambda m: f"{m.group(1)} BETWEEN '{start:{fmt}}' AND '{end:{fmt}}'",
        sql,
    )
    sql = sql.replace("${plot_type:sqlstring}", quoted)
    return sql.replace("'$plot_type'", quoted.split(",")[0])


def queries() -> dict[str, str]:
    dash = json.loads(DASHBOARD.read_text())
    out = {str(p["id"]): t["rawSql"] for p in dash["panels"] for t in p.get("targets", [])}
    out["plot_type variable"] = next(
        v["query"] for v in dash["templating"]["list"] if v["name"] == "plot_type"
    )
    return out


async def test_weights_dashboard_queries_on_mariadb(fresh_mysql_url: str) -> None:
    engine = make_engine(fresh_mysql_url)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        async with make_sessionmaker(engine)() as session:
            ltcc = PlotType(name="LTCC_adc", detector="LTCC")
            rf = PlotType(name="RF_time", detector="RF")
            hidden = PlotType(name="Old_plot", ignored=True)
            session.add_all([ltcc, rf, hidden])
            await session.flush()
            rows = [
                (ltcc, {"Good": 0.9, "Bad": 0.1}, "Good", now - timedelta(minutes=30)),
                (ltcc, {"Good": 0.2, "Bad": 0.8}, "Bad", now - timedelta(minutes=20)),
                (rf, {"Good": 0.6, "NoData": 0.4}, "Good", now - timedelta(minutes=10)),
                (ltcc, {"Good": 0.5, "Bad": 0.5}, "Bad", now - timedelta(days=3)),  # outside
            ]
            for i, (plot_type, weights, verdict, at) in enumerate(rows):
                session.add(
                    RunHistory(
                        order_id=f"00000000-0000-7000-8000-{i:012d}",
                        plot_type_id=plot_type.id,
                        status=InferenceStatus.OK,
                        verdict=verdict,
                        confirmed=True,
                        weights=weights,
                        created_at=at,
                    )
                )
            await session.commit()

        sql = queries()
        start, end = now - timedelta(hours=24), now + timedelta(minutes=1)
        async with engine.connect() as conn:
            names = [r[0] for r in await conn.execute(text(sql["plot_type variable"]))]
            assert names == ["LTCC_adc", "RF_time"]  # ignored plot types are not offered

            # Panel 1: the Bad weight of every selected plot type, one series per plot type.
            bad = (
                (await conn.execute(text(grafana_sql(sql["1"], names, start, end))))
                .mappings()
                .all()
            )
            assert [(r["metric"], float(r["value"])) for r in bad] == [
                ("LTCC_adc", 0.1),
                ("LTCC_adc", 0.8),
            ]  # RF_time has no Bad label: no series, not a line of zeros

            # Panel 2 (repeated per plot type): every label's weight over time.
            per_type = (
                (await conn.execute(text(grafana_sql(sql["2"], ["LTCC_adc"], start, end))))
                .mappings()
                .all()
            )
            assert [(float(r["Good"]), float(r["Bad"])) for r in per_type] == [
                (0.9, 0.1),
                (0.2, 0.8),
            ]
            assert all(r["NoData"] is None for r in per_type)
            assert [r["time"] for r in per_type] == sorted(r["time"] for r in per_type)

            # Panel 3: verdict counts in the time range.
            table = (
                (await conn.execute(text(grafana_sql(sql["3"], names, start, end))))
                .mappings()
                .all()
            )
            counts = {(r["plot type"], r["verdict"]): r["inferences"] for r in table}
            assert counts == {
                ("LTCC_adc", "Good"): 1,
                ("LTCC_adc", "Bad"): 1,
                ("RF_time", "Good"): 1,
            }
    finally:
        await engine.dispose()
