"""A batch through the alarms (``hydra_keeper.alarms.mark_alarms`` and ``beeps``): the
entries' beeps and events, and the beam asked only when a confirmed alarm verdict needs it.
The beam gate is a stub: the test chooses the beam state rather than writing run conditions
that every test on the database would share."""

from __future__ import annotations

from hydra_common.beam import BeamReading, BeamStatus
from hydra_common.db.engine import make_engine
from hydra_common.db.schema import utcnow
from hydra_keeper.alarms import AlarmRules, beeps, mark_alarms
from hydra_keeper.entries import Entry

from .conftest import World, make_entry, make_report, make_world

ON = BeamStatus(BeamReading("rest", 5.0, run_type="physics"), "on", False, True, "")
OFF = BeamStatus(BeamReading("rest", 0.0), "off", False, False, "beam_off")


class StubGate:
    """A beam gate that says what the test set, and counts how often it was asked."""

    def __init__(self, status: BeamStatus) -> None:
        self.status_now = status
        self.asked = 0

    async def status(self, conn: object) -> BeamStatus:
        self.asked += 1
        return self.status_now


def _entries(world: World, weights: list[tuple[float, float]]) -> list[Entry]:
    return [make_entry(world, make_report(world, w, chunk=i)) for i, w in enumerate(weights)]


async def test_two_confirmed_bad_of_three_raise_one_beep(db_url: str) -> None:
    world = await make_world(db_url)
    gate = StubGate(ON)
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            good = _entries(world, [(0.9, 0.1)])
            quiet = await mark_alarms(conn, good, AlarmRules(), gate, utcnow())
            bad = _entries(world, [(0.1, 0.9), (0.1, 0.9)])
            marked = await mark_alarms(conn, bad, AlarmRules(), gate, utcnow())
    finally:
        await engine.dispose()
    assert (quiet.beam, gate.asked) == (None, 1)  # asked for the Bad batch only
    assert marked.beam is ON and marked.events == {"raise": 1}
    assert [(e.alarm, e.alarm_event) for e in bad] == [(False, ""), (True, "raise")]
    (alarm,) = beeps(bad, marked.beam)
    assert (alarm.order_id, alarm.event, alarm.threshold) == (bad[1].order_id, "raise", 0.6)
    assert (alarm.beam, alarm.beam_current, alarm.run_type) == ("on", 5.0, "physics")


async def test_confirmed_bad_with_the_beam_off_is_suppressed(db_url: str) -> None:
    world = await make_world(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            bad = _entries(world, [(0.1, 0.9)] * 3)
            marked = await mark_alarms(conn, bad, AlarmRules(), StubGate(OFF), utcnow())
    finally:
        await engine.dispose()
    assert marked.suppressed == {"beam_off": 3} and not marked.events
    assert not any(e.alarm for e in bad) and beeps(bad, marked.beam) == []
