"""Masks of accepted problems: a confirmed Bad whose heat lies inside a mask in force is
recorded ``Accepted`` and does not alarm; outside the mask, or once it expired (by run or
by date), it alarms as before."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import PlotTypeMask, utcnow

BAD = (0.1, 0.9)  # Good, Bad: a confirmed Bad (threshold 0.6)
LEFT_HEAT = (2, 2, [1.0, 0.0, 1.0, 0.0])
RIGHT_HEAT = (2, 2, [0.0, 1.0, 0.0, 1.0])


async def _mask(url: str, plot_type_id: int, **expiry: Any) -> None:
    """The left half of the image, accepted with the given expiry."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(PlotTypeMask.__table__).values(
                    plot_type_id=plot_type_id,
                    x0=0.0,
                    y0=0.0,
                    x1=0.5,
                    y1=1.0,
                    reason="dead channels, left half",
                    created_by="expert",
                    created_at=utcnow(),
                    **expiry,
                )
            )
    finally:
        await engine.dispose()


async def _recorded(kit: ModuleType, world: Any) -> dict[str, tuple[str, bool, float]]:
    rows = await kit.query(
        world.url,
        "SELECT order_id, verdict, confirmed, plot_id FROM run_history WHERE plot_type_id = :p",
        p=world.plot_type_id,
    )
    return {r[0]: (r[1], bool(r[2]), r[3]) for r in rows}


async def _alarms(kit: ModuleType, world: Any) -> dict[str, bool]:
    rows = await kit.query(
        world.url,
        "SELECT h.order_id, m.alarm FROM monitoring_log m"
        " JOIN run_history h ON h.id = m.run_history_id WHERE m.plot_type_id = :p",
        p=world.plot_type_id,
    )
    return {r[0]: bool(r[1]) for r in rows}


async def test_bad_inside_mask_is_accepted_outside_alarms(
    own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    inside = await kit.make_world(own_db_url)
    by_run = await kit.make_world(own_db_url)
    by_date = await kit.make_world(own_db_url)
    await _mask(own_db_url, inside.plot_type_id, until_run=200)
    await _mask(own_db_url, by_run.plot_type_id, until_run=150)
    await _mask(own_db_url, by_date.plot_type_id, until_time=utcnow() - timedelta(minutes=1))
    # One confirmed Bad of one image raises an alarm: what the masks change is under test.
    service, client = await keeper_factory(
        own_db_url, alarm_bad_count=1, alarm_window=1, alarm_repeat_seconds=0
    )
    image = kit.png_bytes()
    accepted = kit.make_report(inside, BAD, ("Good", "Bad"), heat=LEFT_HEAT, image=image)
    await client.record([accepted])
    outside = kit.make_report(inside, BAD, ("Good", "Bad"), heat=RIGHT_HEAT, image=image)
    after_run = kit.make_report(by_run, BAD, ("Good", "Bad"), heat=LEFT_HEAT, run_number=151)
    after_date = kit.make_report(by_date, BAD, ("Good", "Bad"), heat=LEFT_HEAT)
    await client.record([outside, after_run, after_date])

    rec = await _recorded(kit, inside)
    verdict, confirmed, plot_id = rec[accepted.order.order_id]
    assert (verdict, confirmed) == ("Accepted", True)
    assert plot_id is not None  # still kept for labelling, with its heat map
    assert rec[outside.order.order_id][:2] == ("Bad", True)
    alarms = await _alarms(kit, inside)
    assert accepted.order.order_id not in alarms  # no log entry, no alarm
    assert alarms[outside.order.order_id] is True
    # Expired masks no longer apply.
    assert (await _recorded(kit, by_run))[after_run.order.order_id][:2] == ("Bad", True)
    assert (await _alarms(kit, by_run))[after_run.order.order_id] is True
    assert (await _recorded(kit, by_date))[after_date.order.order_id][:2] == ("Bad", True)
    assert (await _alarms(kit, by_date))[after_date.order.order_id] is True
    # The figures: one Accepted, three alarm verdicts that alarmed.
    assert (
        kit.metric(service, "hydra_keeper_verdicts_total", verdict="Accepted", confirmed="true")
        == 1
    )
    assert kit.metric(service, "hydra_keeper_verdicts_total", verdict="Bad", confirmed="true") == 3
    assert kit.metric(service, "hydra_keeper_alarm_events_total", event="raise") == 3
