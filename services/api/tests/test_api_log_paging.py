"""The Log page's pages, detector by detector, are the whole window in the Log's order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hydra_common.db.schema import MonitoringLog, PlotType, utcnow


async def test_pages_follow_detector_then_newest_first(api: Any) -> None:
    # Entries in three detectors (names that sort apart), interleaved in time.
    dets = [api.unique(f"{p}LOGPAGE") for p in ("A", "M", "Z")]
    types = [await api.plot_type(detector=d) for d in dets]
    now = utcnow()
    async with api.session() as s:
        s.add_all(
            MonitoringLog(
                plot_type_id=types[i % 3].id,
                verdict="Bad",
                confirmed=True,
                transition=i % 2 == 0,
                created_at=now - timedelta(minutes=i),
            )
            for i in range(11)
        )
        await s.commit()
    hours = 2
    # The order the page promises, from one query over the whole window.
    async with api.session() as s:
        expected = [
            row[0]
            for row in await s.execute(
                sa.select(MonitoringLog.id)
                .join(PlotType, PlotType.id == MonitoringLog.plot_type_id)
                .where(MonitoringLog.created_at >= utcnow() - timedelta(hours=hours))
                .order_by(
                    PlotType.detector, MonitoringLog.created_at.desc(), MonitoringLog.id.desc()
                )
            )
        ]
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        body = (
            await api.client.get("/api/log", params={"hours": hours, "limit": 4, "offset": offset})
        ).json()
        assert body["total"] == len(expected)
        seen += [e["id"] for g in body["groups"] for e in g["entries"]]
        offset = body["next"]
    assert seen == expected
    one = (await api.client.get("/api/log", params={"hours": hours, "detector": dets[1]})).json()
    assert one["total"] == 4 and [g["detector"] for g in one["groups"]] == [dets[1]]
    flips = (
        await api.client.get(
            "/api/log", params={"hours": hours, "detector": dets[0], "transitions_only": "true"}
        )
    ).json()
    assert flips["total"] == 2  # i = 0, 6 of the detector's 0, 3, 6, 9
