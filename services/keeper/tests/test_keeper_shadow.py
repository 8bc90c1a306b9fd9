"""Shadow results in reports: recorded in shadow_history beside the active verdict, the
disagreements' images stored under shadow/, and nothing the active verdict drives changed
(run history, kept images, the log, alarms); a replay adds nothing and a shadow result that
names an unknown model costs only itself. Real keeper over gRPC, SQLite and MariaDB."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import sqlalchemy as sa
from hydra.v1 import report_pb2

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import Model, utcnow
from hydra_testsupport.rows import inserted_id


async def _shadow_model(url: str, world: Any) -> int:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                sa.insert(Model.__table__).values(
                    plot_type_id=world.plot_type_id,
                    name=world.plot_type,
                    version=2,
                    architecture="small",
                    label_order=["Good", "Bad"],
                    created_at=utcnow(),
                )
            )
            return inserted_id(result)
    finally:
        await engine.dispose()


def _with_shadow(
    report: report_pb2.Report, model_id: int, weights: tuple[float, float] | None
) -> report_pb2.Report:
    result = report.shadow
    result.model_id = model_id
    result.seconds_per_image = 0.004
    result.active_seconds_per_image = 0.003
    if weights is None:
        result.status = report_pb2.REPORT_STATUS_ERROR
        result.error = "model server NOT_FOUND: version 2 not loaded"
    else:
        result.status = report_pb2.REPORT_STATUS_OK
        result.labels.extend(["Good", "Bad"])
        result.weights.extend(weights)
    return report


async def test_shadow_results_are_recorded_apart_from_the_verdicts(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url, thresholds={"Good": 0.5, "Bad": 0.6})
    shadow_id = await _shadow_model(db_url, world)
    service, client = await keeper_factory(db_url)
    png = kit.png_bytes()
    agree = _with_shadow(
        kit.make_report(world, (0.9, 0.1), image=png, chunk=1), shadow_id, (0.8, 0.2)
    )
    differ = _with_shadow(
        kit.make_report(world, (0.9, 0.1), image=png, chunk=2), shadow_id, (0.1, 0.9)
    )
    failed = _with_shadow(kit.make_report(world, (0.1, 0.9), image=png, chunk=3), shadow_id, None)
    plain = kit.make_report(world, (0.9, 0.1), image=png, chunk=4)
    stranger = _with_shadow(
        kit.make_report(world, (0.9, 0.1), image=png, chunk=5), 2_000_000_000, (0.1, 0.9)
    )
    reports = [agree, differ, failed, plain, stranger]
    await client.record(reports)

    rows = await kit.query(
        db_url,
        "SELECT order_id, ok, verdict, active_verdict, agrees, image_path, error,"
        " seconds_per_image, active_model_id FROM shadow_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    by_order = {r[0]: r[1:] for r in rows}
    assert set(by_order) == {agree.order.order_id, differ.order.order_id, failed.order.order_id}
    ok, verdict, active, agrees, image, _error, seconds, active_id = by_order[agree.order.order_id]
    assert (bool(ok), verdict, active, bool(agrees), image) == (True, "Good", "Good", True, None)
    assert seconds == 0.004 and active_id == world.model_id
    _, verdict, active, agrees, image, _, _, _ = by_order[differ.order.order_id]
    assert (verdict, active, bool(agrees)) == ("Bad", "Good", False)
    assert image.startswith(f"shadow/{world.plot_type}/")
    assert (service.settings.storage_root / image).read_bytes() == png
    ok, _, active, agrees, image, error, _, _ = by_order[failed.order.order_id]
    assert (bool(ok), active, agrees, image) == (False, "Bad", None, None)
    assert "NOT_FOUND" in error

    # The verdicts, kept images and log are the active model's alone.
    history = await kit.query(
        db_url,
        "SELECT order_id, verdict, model_id FROM run_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    assert {r[0]: r[1] for r in history} == {
        r.order.order_id: "Bad" if r is failed else "Good" for r in reports
    }
    assert {r[2] for r in history} == {world.model_id}
    kept = await kit.query(
        db_url, "SELECT order_id FROM plots WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert {r[0] for r in kept} == {failed.order.order_id}  # the confirmed Bad, not `differ`
    logged = await kit.query(
        db_url,
        "SELECT verdict FROM monitoring_log WHERE plot_type_id = :p AND event = ''",
        p=world.plot_type_id,
    )
    assert [r[0] for r in logged] == ["Bad"]

    await client.record(reports)  # a replay adds nothing
    again = await kit.query(
        db_url,
        "SELECT COUNT(*) FROM shadow_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    assert again[0][0] == 3
