"""Recording reports through a real keeper (gRPC on loopback) on SQLite and MariaDB."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from hydra.v1 import report_pb2

from hydra_testsupport import eventually_async as eventually


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_keeper_thresholds_decide_confirmation(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.7, "Bad": 0.6})
    service, client = await keeper_factory(db_url)
    confirmed = kit.make_report(world, (0.9, 0.1))
    unconfirmed = kit.make_report(world, (0.65, 0.35))
    at_threshold = kit.make_report(world, (0.3, 0.7), ("NoData", "Good"))  # 0.7 >= 0.7
    no_threshold = kit.make_report(world, (0.45, 0.55), ("Good", "NoData"))  # default 0.5
    reports = [confirmed, unconfirmed, at_threshold, no_threshold]
    await client.record(reports)

    rows = await kit.query(
        db_url,
        "SELECT order_id, verdict, confidence, confirmed, weights, thresholds, stage_seconds,"
        " predictor_id, file_time, model_id, status FROM run_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    by_id = {r[0]: r for r in rows}
    assert len(rows) == 4
    got = {oid: (r[1], bool(r[3])) for oid, r in by_id.items()}
    assert got[confirmed.order.order_id] == ("Good", True)
    assert got[unconfirmed.order.order_id] == ("Good", False)
    assert got[at_threshold.order.order_id] == ("Good", True)
    assert got[no_threshold.order.order_id] == ("NoData", True)
    row = by_id[confirmed.order.order_id]
    assert abs(row[2] - 0.9) < 1e-6
    assert _json(row[4]) == {"Good": 0.9, "Bad": 0.1}
    assert _json(row[5]) == {"Good": 0.7, "Bad": 0.6}
    assert _json(by_id[no_threshold.order.order_id][5]) == {"Good": 0.7, "NoData": 0.5}
    stages = _json(row[6])
    assert set(stages) == {"feed", "queue", "dispatch", "predict", "report", "keep", "total"}
    assert abs(stages["predict"] - 0.001) < 1e-6
    assert stages["total"] >= stages["feed"] + stages["queue"]
    assert row[7] == "predictor-test"
    assert row[8] is not None
    assert row[9] == world.model_id
    assert row[10] == "ok"
    assert kit.metric(service, "hydra_keeper_reports_total") == 4
    assert (
        kit.metric(service, "hydra_keeper_verdicts_total", verdict="Good", confirmed="false") == 1
    )


async def test_keeper_threshold_edit_applies_after_refresh(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.7})
    _, client = await keeper_factory(db_url, keeper_refresh_seconds=0.2)
    first = kit.make_report(world, (0.8, 0.2))
    await client.record([first])
    await kit.execute(
        db_url, "UPDATE thresholds SET threshold = 0.95 WHERE model_id = :m", m=world.model_id
    )
    import asyncio

    await asyncio.sleep(0.5)
    second = kit.make_report(world, (0.8, 0.2))
    await client.record([second])
    rows = dict(
        await kit.query(
            db_url,
            "SELECT order_id, confirmed FROM run_history WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
    )
    assert bool(rows[first.order.order_id]) is True
    assert bool(rows[second.order.order_id]) is False


async def test_keeper_replayed_report_changes_nothing(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    service, client = await keeper_factory(db_url)
    report = kit.make_report(world, (0.2, 0.8), image=kit.png_bytes())  # Bad confirmed: kept
    await client.record([report, report])  # twice within one batch
    before = await kit.query(
        db_url, "SELECT id, verdict FROM run_history WHERE plot_type_id = :p", p=world.plot_type_id
    )
    changed = report_pb2.Report()
    changed.CopyFrom(report)
    del changed.weights[:]
    changed.weights.extend([0.9, 0.1])  # a replay never rewrites what was recorded
    await client.record([changed])
    after = await kit.query(
        db_url, "SELECT id, verdict FROM run_history WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert before == after
    assert len(after) == 1 and after[0][1] == "Bad"
    for table in ("plots", "monitoring_log"):
        (count,) = (
            await kit.query(
                db_url,
                f"SELECT COUNT(*) FROM {table} WHERE plot_type_id = :p",
                p=world.plot_type_id,
            )
        )[0]
        assert count == 1, table
    assert client.acked.count(report.order.order_id) == 3
    assert kit.metric(service, "hydra_keeper_duplicates_total") == 2
    assert kit.metric(service, "hydra_keeper_reports_total") == 1


async def test_keeper_run_time_keeps_the_newest(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    older = kit.make_report(world, (0.9, 0.1), run_number=7, image=kit.png_bytes())
    newer = kit.make_report(world, (0.2, 0.8), run_number=8, image=kit.png_bytes())
    await client.record([newer])
    await client.record([older])  # arrives late: must not replace the newer state
    rows = await kit.query(
        db_url,
        "SELECT order_id, run_number, verdict, image_path FROM run_time WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    assert rows == [
        (newer.order.order_id, 8, "Bad", f"live/{world.plot_type}/{newer.order.order_id}.png")
    ]
    # Both in one batch, older last in the request: the newest still wins.
    a = kit.make_report(world, (0.9, 0.1), run_number=9)
    b = kit.make_report(world, (0.9, 0.1), run_number=10)
    await client.record([b, a])
    rows = await kit.query(
        db_url, "SELECT order_id FROM run_time WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert rows == [(b.order.order_id,)]


async def test_keeper_live_image_replaced(
    db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Any, monkeypatch: Any
) -> None:
    from hydra_keeper import files

    monkeypatch.setattr(files, "LIVE_FILE_GRACE_SECONDS", 0.0)  # no grace: gone at once
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    first = kit.make_report(world, (0.9, 0.1), image=kit.png_bytes())
    await client.record([first])
    live_dir = tmp_path / "storage" / "live" / world.plot_type
    assert [p.name for p in live_dir.iterdir()] == [f"{first.order.order_id}.png"]
    second = kit.make_report(world, (0.9, 0.1), image=kit.png_bytes(32, 32))
    await client.record([second])
    # The ack comes first (it never waits for a delete); the old file goes right after it.
    await eventually(
        lambda: [p.name for p in live_dir.iterdir()] == [f"{second.order.order_id}.png"]
    )


async def test_keeper_no_model_and_error_reports(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    service, client = await keeper_factory(db_url)
    no_model = kit.make_report(world, status=report_pb2.REPORT_STATUS_NO_MODEL)
    failed = kit.make_report(
        world, status=report_pb2.REPORT_STATUS_ERROR, error="model server unavailable"
    )
    malformed = kit.make_report(world, (0.5,), ("Good", "Bad"))
    await client.record([no_model, failed, malformed])
    rows = {
        r[0]: r[1:]
        for r in await kit.query(
            db_url,
            "SELECT order_id, status, verdict, confirmed, error, model_id FROM run_history"
            " WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
    }
    assert rows[no_model.order.order_id] == ("no_model", "NoModel", 0, "", None)
    assert rows[failed.order.order_id] == ("error", "Error", 0, "model server unavailable", None)
    assert rows[malformed.order.order_id][:3] == ("error", "Error", 0)
    assert "malformed" in rows[malformed.order.order_id][3]
    (logged,) = (
        await kit.query(
            db_url,
            "SELECT COUNT(*) FROM monitoring_log WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
    )[0]
    assert logged == 0
    assert (
        kit.metric(service, "hydra_keeper_verdicts_total", verdict="Error", confirmed="false") == 2
    )


async def test_keeper_heartbeat_row(db_url: str, keeper_factory: Any, kit: ModuleType) -> None:
    import asyncio

    service, _ = await keeper_factory(db_url)
    for _ in range(200):
        rows = await kit.query(
            db_url,
            "SELECT state, details FROM service_status WHERE service = 'keeper' AND instance = :i",
            i=service.instance,
        )
        if rows and rows[0][0] == "serving":  # an earlier test's keeper left "stopped"
            break
        await asyncio.sleep(0.05)
    assert rows and rows[0][0] == "serving"
    assert "reports" in _json(rows[0][1])


async def test_a_replaced_live_image_stays_a_while_for_pages_that_just_saw_it(
    db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Path, monkeypatch: Any
) -> None:
    """The Run page loads the live image it was told about; if the keeper deleted it the
    moment a newer one committed, the page would show a broken image (and a 404)."""
    from hydra_keeper import files

    now = [1000.0]  # a clock the test turns: no wall-time assumption
    monkeypatch.setattr(files, "clock", lambda: now[0])
    monkeypatch.setattr(files, "LIVE_FILE_GRACE_SECONDS", 0.5)
    world = await kit.make_world(db_url)
    _, client = await keeper_factory(db_url)
    first = kit.make_report(world, (0.9, 0.1), run_number=1, image=kit.png_bytes())
    await client.record([first])
    old = tmp_path / "storage" / "live" / world.plot_type / f"{first.order.order_id}.png"
    assert old.exists()
    await client.record([kit.make_report(world, (0.9, 0.1), run_number=2, image=kit.png_bytes())])
    assert old.exists()  # replaced, but still there for a while
    now[0] += 0.6
    await client.record([kit.make_report(world, (0.9, 0.1), run_number=3, image=kit.png_bytes())])
    assert not old.exists()
