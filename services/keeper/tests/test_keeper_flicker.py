"""Alarms that do not cry wolf: K of N, one alarm for a flickering plot, acknowledge, clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from hydra_common.alarm_states import acknowledge, alarm_state
from hydra_common.beam import BeamReading, BeamSettings, beam_status
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_keeper.alarms import CONFIRMED, OTHER, UNCONFIRMED, AlarmRules, PlotAlarm, Sighting

GOOD, BAD = (0.9, 0.1), (0.1, 0.9)
T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _sighting(value: int, n: int, plot_type: str = "pt") -> Sighting:
    return Sighting(f"{n:08d}", 1, plot_type, 100, True, value)


def test_k_of_n_raises_once_repeats_after_the_interval_and_clears_only_when_recovered() -> None:
    rules = AlarmRules(bad_count=2, window=3, repeat_seconds=60)
    alarm = PlotAlarm(1)
    seq = [CONFIRMED, OTHER, CONFIRMED, OTHER, CONFIRMED, UNCONFIRMED, OTHER, OTHER, OTHER]
    outcomes = [
        alarm.step(_sighting(v, i), rules, None, T0 + timedelta(seconds=40 * i))
        for i, v in enumerate(seq)
    ]
    # Bad at 0 (1 of 3), Bad at 2 (2 of 3): raised; the Bad at 4 comes 80 s later: a repeat.
    assert [o.event for o in outcomes] == ["", "", "raise", "", "", "", "", "", "clear"]
    assert [o.beep for o in outcomes] == [False, False, True, False, True] + [False] * 4
    assert alarm.state == "clear" and alarm.recent == [OTHER, OTHER, OTHER]


def test_per_plot_type_window_and_suppression_by_the_beam() -> None:
    rules = AlarmRules(bad_count=2, window=3, overrides={"strict": (1, 1)})
    strict = PlotAlarm(1)
    assert strict.step(_sighting(CONFIRMED, 1, "strict"), rules, None, T0).event == "raise"
    settings = BeamSettings(beam_current_threshold=1.0, special_run_types="cosmics, LED")
    off = beam_status(BeamReading("rest", 0.5, 7, "physics", False, T0), settings, T0)
    special = beam_status(BeamReading("rest", 50.0, 7, "led", False, T0), settings, T0)
    assert (off.state, off.alarms, off.reason) == ("off", False, "beam_off")
    assert (special.state, special.alarms, special.reason) == ("on", False, "special_run")
    other = PlotAlarm(2)
    for beam in (off, special):
        outcome = other.step(_sighting(CONFIRMED, 2, "strict"), rules, beam, T0)
        assert (outcome.event, outcome.beep, outcome.suppressed) == ("", False, beam.reason)
    assert other.recent == [] and other.state == "clear"


def test_beam_rule_threshold_silence_and_unknown_policy() -> None:
    alarm = BeamSettings(beam_current_threshold=1.0, epics_silence_seconds=10)
    quiet = BeamSettings(beam_unknown_policy="suppress", epics_silence_seconds=10)
    at_threshold = BeamReading("rest", 1.0, 1, "", False, T0)
    assert beam_status(at_threshold, alarm, T0).state == "off"  # strictly above counts
    heard = BeamReading("epics", 5.0, 1, "cosmics", False, T0)
    later = T0 + timedelta(seconds=11)
    silent_alarm, silent_quiet = beam_status(heard, alarm, later), beam_status(heard, quiet, later)
    # Silent: unknown, and the stale run type no longer makes the run special.
    assert (silent_alarm.state, silent_alarm.special, silent_alarm.alarms) == (
        "unknown",
        False,
        True,
    )
    assert (silent_quiet.alarms, silent_quiet.reason) == (False, "beam_unknown")
    assert beam_status(BeamReading("none"), alarm, T0).state == "unknown"


async def _events(kit: ModuleType, world: Any) -> list[tuple[str, str]]:
    rows = await kit.query(
        world.url,
        "SELECT event, actor FROM monitoring_log WHERE plot_type_id = :p AND event != ''"
        " ORDER BY id",
        p=world.plot_type_id,
    )
    return [(r[0], r[1]) for r in rows]


async def _state(world: Any) -> str:
    engine = make_engine(world.url)
    try:
        async with engine.connect() as conn:
            return await alarm_state(conn, world.plot_type_id)
    finally:
        await engine.dispose()


async def _acknowledge(world: Any, user: str) -> None:
    engine = make_engine(world.url)
    try:
        async with make_sessionmaker(engine)() as session:
            view = await acknowledge(session, world.plot_type, user)
            await session.commit()
        assert view.state == "acknowledged" and view.acknowledged_by == user
    finally:
        await engine.dispose()


async def test_a_flickering_plot_raises_one_alarm_and_acknowledge_silences_it_until_it_recovers(
    own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(own_db_url)
    # Defaults: 2 of 3; beeps repeat at most every 5 minutes (none within this test).
    # No run conditions: the beam is unknown, and the default policy lets alarms through.
    service, client = await keeper_factory(own_db_url)
    for weights in (GOOD, BAD, GOOD, BAD, GOOD, BAD, GOOD, BAD, GOOD, BAD):
        await client.record([kit.make_report(world, weights)])
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    assert kit.metric(service, "hydra_keeper_alarm_events_total", event="raise") == 1
    assert await _events(kit, world) == [("raise", "")]
    assert await _state(world) == "raised"

    await _acknowledge(world, "crew1")
    for weights in (BAD, BAD, GOOD, BAD):
        await client.record([kit.make_report(world, weights)])
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    assert await _state(world) == "acknowledged"

    # Recovered: three images without a Bad clear it; the next two Bads raise it anew.
    for weights in (GOOD, GOOD, GOOD):
        await client.record([kit.make_report(world, weights)])
    assert await _state(world) == "clear"
    for weights in (BAD, BAD):
        await client.record([kit.make_report(world, weights)])
    assert await _state(world) == "raised"
    assert kit.metric(service, "hydra_keeper_alarms_total") == 2
    assert await _events(kit, world) == [
        ("raise", ""),
        ("acknowledge", "crew1"),
        ("clear", ""),
        ("raise", ""),
    ]


async def test_a_damaged_alarm_row_does_not_stop_recording(
    own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(own_db_url)
    _, client = await keeper_factory(own_db_url)
    await client.record([kit.make_report(world, BAD)])
    await kit.execute(
        own_db_url,
        "UPDATE alarm_states SET recent = :r WHERE plot_type_id = :p",
        r='["x", 7, null, 2]',
        p=world.plot_type_id,
    )
    # The damaged values count as other; the stored Bad and this one make 2 of the last 3.
    await client.record([kit.make_report(world, BAD)])
    assert await _state(world) == "raised"


async def test_a_steady_good_plot_type_stops_writing_its_alarm_row(
    own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    world = await kit.make_world(own_db_url)
    _, client = await keeper_factory(own_db_url)

    async def row() -> tuple[Any, ...]:
        rows = await kit.query(
            own_db_url,
            "SELECT recent, updated_at FROM alarm_states WHERE plot_type_id = :p",
            p=world.plot_type_id,
        )
        return tuple(rows[0])

    for _ in range(3):
        await client.record([kit.make_report(world, GOOD)])
    full = await row()
    for _ in range(2):
        await client.record([kit.make_report(world, GOOD)])
    assert await row() == full  # the window was full of Good: nothing to write
