"""Alarms: only for confirmed alarm verdicts, only while the beam is on (or unknown)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import RunCondition, utcnow


async def _beam(url: str, current: float | None) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(RunCondition.__table__).values(
                    run_number=100, beam_current=current, recorded_at=utcnow()
                )
            )
    finally:
        await engine.dispose()


async def _alarm_flags(kit: ModuleType, world: Any) -> dict[str, bool]:
    rows = await kit.query(
        world.url,
        "SELECT h.order_id, m.alarm FROM monitoring_log m"
        " JOIN run_history h ON h.id = m.run_history_id WHERE m.plot_type_id = :p",
        p=world.plot_type_id,
    )
    return {r[0]: bool(r[1]) for r in rows}


def _read_json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None


async def _wait_for_file(path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (payload := _read_json(path)) is None:
        assert time.monotonic() < deadline, f"alarm command never wrote {path}"
        await asyncio.sleep(0.05)
    return payload


async def test_keeper_alarm_only_with_beam_on(
    own_db_url: str, keeper_factory: Any, kit: ModuleType, tmp_path: Path
) -> None:
    world = await kit.make_world(own_db_url, thresholds={"Good": 0.7, "Bad": 0.6})
    out_dir = tmp_path / "alarms"
    out_dir.mkdir()
    script = (
        "import json, os, pathlib, sys; a = json.load(sys.stdin); "
        f"p = pathlib.Path({str(out_dir)!r}, a['order_id'] + '.json'); "
        "t = p.with_suffix('.tmp'); t.write_text(json.dumps(a)); os.replace(t, p)"
    )
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"
    # One Bad of one image alarms, and every one beeps: the beam gating alone is under test.
    service, client = await keeper_factory(
        own_db_url,
        alarm_command=command,
        beam_current_threshold=1.0,
        alarm_bad_count=1,
        alarm_window=1,
        alarm_repeat_seconds=0,
    )

    # No run conditions known: a confirmed Bad alarms anyway.
    unknown = kit.make_report(world, (0.2, 0.8), run_number=100)
    await client.record([unknown])
    payload = await _wait_for_file(out_dir / f"{unknown.order.order_id}.json")
    assert payload["verdict"] == "Bad" and payload["plot_type"] == world.plot_type
    assert payload["run_number"] == 100 and payload["threshold"] == 0.6
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    assert kit.metric(service, "hydra_keeper_beam_on") == -1

    # Beam off: recorded and logged, no alarm.
    await _beam(own_db_url, 0.0)
    off = kit.make_report(world, (0.2, 0.8), run_number=100)
    await client.record([off])
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    assert kit.metric(service, "hydra_keeper_beam_on") == 0

    # Beam on: alarms; an unconfirmed Bad in the same batch does not.
    await _beam(own_db_url, 50.0)
    on = kit.make_report(world, (0.2, 0.8), run_number=100)
    unconfirmed = kit.make_report(world, (0.45, 0.55), run_number=100)
    await client.record([on, unconfirmed])
    payload = await _wait_for_file(out_dir / f"{on.order.order_id}.json")
    assert payload["beam_current"] == 50.0
    assert kit.metric(service, "hydra_keeper_alarms_total") == 2
    assert kit.metric(service, "hydra_keeper_beam_on") == 1

    assert await _alarm_flags(kit, world) == {
        unknown.order.order_id: True,
        off.order.order_id: False,
        on.order.order_id: True,
        unconfirmed.order.order_id: False,
    }
    assert not (out_dir / f"{off.order.order_id}.json").exists()
    assert not (out_dir / f"{unconfirmed.order.order_id}.json").exists()


async def test_keeper_failing_alarm_command_does_not_stop_recording(
    db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(db_url)
    service, client = await keeper_factory(db_url, alarm_command="/nonexistent/alarm-hook")
    bad = kit.make_report(world, (0.1, 0.9))
    good = kit.make_report(world, (0.9, 0.1))
    await client.record([bad])
    await client.record([good])
    rows = await kit.query(
        db_url, "SELECT COUNT(*) FROM run_history WHERE plot_type_id = :p", p=world.plot_type_id
    )
    assert rows[0][0] == 2
    assert kit.metric(service, "hydra_keeper_reports_total") == 2
