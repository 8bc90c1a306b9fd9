"""EPICS: the beam watcher against a real Channel Access server (an IOC made with
``caproto.server`` in the test), and the status PVs the keeper serves, read by a real
caproto client. Everything stays on loopback: the fixture points every EPICS address list
at 127.0.0.1, turns the automatic (broadcast) lists off, and gives each test its own ports.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from caproto import ChannelData, ChannelDouble, ChannelInteger, ChannelString
from caproto.asyncio.client import Context as ClientContext
from caproto.asyncio.server import Context as ServerContext

from hydra_keeper.beam import pv_value
from hydra_keeper.epics_status import stop_server
from hydra_testsupport import eventually_async as eventually

GOOD, BAD = (0.9, 0.1), (0.1, 0.9)
LOOPBACK_ENV = {
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
}
PORT_VARS = ("EPICS_CA_SERVER_PORT", "EPICS_CAS_SERVER_PORT", "EPICS_CA_REPEATER_PORT")


def _free_port() -> int:
    """A port free for both TCP and UDP on loopback (Channel Access uses both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def assert_loopback_only() -> None:
    """Refuse to start any IOC or client unless Channel Access stays on loopback."""
    for name, value in LOOPBACK_ENV.items():
        assert os.environ.get(name) == value, f"{name} must be {value!r} before an IOC starts"
    for name in PORT_VARS:
        assert os.environ.get(name, "").isdigit(), f"{name} must name this test's own port"


@pytest.fixture
def epics_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Loopback-only Channel Access with this test's own ports, asserted before use."""
    env = dict(LOOPBACK_ENV)
    server_port = str(_free_port())
    env["EPICS_CA_SERVER_PORT"] = server_port  # UDP searches, and the first TCP port tried
    env["EPICS_CAS_SERVER_PORT"] = server_port
    env["EPICS_CA_REPEATER_PORT"] = str(_free_port())
    env["EPICS_CAS_BEACON_PORT"] = str(_free_port())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert_loopback_only()
    # Servers send beacons to this port on loopback; a socket there takes them (as a CA
    # repeater would), so no "connection refused" answers them.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as beacons:
        beacons.bind(("127.0.0.1", int(env["EPICS_CAS_BEACON_PORT"])))
        yield env


Ioc = Callable[[dict[str, ChannelData]], Awaitable[ServerContext]]


@pytest.fixture
async def ioc(epics_env: dict[str, str]) -> AsyncIterator[Any]:
    """Start caproto IOCs in the test's event loop; ``ioc.stop()`` silences them."""
    running: list[tuple[ServerContext, asyncio.Task[None]]] = []

    class Iocs:
        async def start(self, pvdb: dict[str, ChannelData]) -> ServerContext:
            assert_loopback_only()
            ctx = ServerContext(pvdb)
            assert ctx.interfaces == ["127.0.0.1"]
            running.append((ctx, asyncio.create_task(ctx.run())))
            deadline = time.monotonic() + 10
            while ctx.port is None:
                assert time.monotonic() < deadline, "IOC did not start"
                await asyncio.sleep(0.01)
            return ctx

        async def stop(self) -> None:
            for ctx, task in running:
                await stop_server(ctx, task)
            running.clear()

    iocs = Iocs()
    yield iocs
    await iocs.stop()


def test_the_fixture_keeps_channel_access_on_loopback(epics_env: dict[str, str]) -> None:
    assert_loopback_only()
    assert os.environ["EPICS_CA_SERVER_PORT"] == epics_env["EPICS_CA_SERVER_PORT"]
    assert len({epics_env[v] for v in ("EPICS_CA_SERVER_PORT", "EPICS_CA_REPEATER_PORT")}) == 2


def test_an_ioc_refuses_to_start_without_the_loopback_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EPICS_CA_AUTO_ADDR_LIST", raising=False)
    with pytest.raises(AssertionError, match="EPICS_CA_AUTO_ADDR_LIST"):
        assert_loopback_only()


async def test_beam_pvs_raise_suppress_and_go_unknown(
    ioc: Any, own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    current = ChannelDouble(value=120.0)
    run_number = ChannelInteger(value=80464)
    run_type = ChannelString(value="physics")
    await ioc.start(
        {f"T{tag}:BEAM": current, f"T{tag}:RUN": run_number, f"T{tag}:RUNTYPE": run_type}
    )
    world = await kit.make_world(own_db_url)
    service, client = await keeper_factory(
        own_db_url,
        epics_beam_current_pv=f"T{tag}:BEAM",
        epics_run_number_pv=f"T{tag}:RUN",
        epics_run_type_pv=f"T{tag}:RUNTYPE",
        epics_silence_seconds=1.5,
        beam_unknown_policy="suppress",
        special_run_types="cosmics,calibration",
        alarm_bad_count=1,
        alarm_window=1,
        alarm_repeat_seconds=0,
    )
    watcher = service.beam_watcher
    assert watcher is not None

    def beam_is(
        state: str, run_type: str = "physics", run_number: int | None = None
    ) -> Callable[[], Awaitable[bool]]:
        # Each PV's update arrives on its own: wait for all the ones the step changed.
        async def check() -> bool:
            status = await watcher.status(None)
            return bool(
                status.state == state
                and status.reading.run_type == run_type
                and run_number in (None, status.reading.run_number)
            )

        return check

    async def bad() -> None:
        await client.record([kit.make_report(world, BAD)])

    def suppressed(reason: str) -> float:
        return float(kit.metric(service, "hydra_keeper_alarms_suppressed_total", reason=reason))

    # Beam on, physics run: the Bad raises the alarm.
    await eventually(beam_is("on", run_number=80464), "the watcher hears the beam on")
    assert watcher.reading().run_number == 80464
    await bad()
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    rows = await kit.query(own_db_url, "SELECT run_number, connected FROM beam_state WHERE id = 1")
    assert rows and rows[0][0] == 80464 and bool(rows[0][1])

    # A special run: recorded, not alarmed.
    await run_type.write("cosmics")
    await eventually(beam_is("on", "cosmics"), "the watcher sees the cosmics run")
    await bad()
    assert kit.metric(service, "hydra_keeper_alarms_total") == 1
    assert suppressed("special_run") == 1

    # Beam off (at and below the threshold): recorded, not alarmed.
    await run_type.write("physics")
    await current.write(0.4)
    await eventually(beam_is("off"), "the watcher sees the beam off")
    await bad()
    assert suppressed("beam_off") == 1

    # Beam back: alarms again.
    await current.write(85.0)
    await eventually(beam_is("on"), "the watcher sees the beam back")
    await bad()
    assert kit.metric(service, "hydra_keeper_alarms_total") == 2

    # The IOC goes silent: after the timeout the state is unknown, and this policy suppresses.
    await ioc.stop()
    await eventually(beam_is("unknown"), "the beam state turns unknown")
    await bad()
    assert suppressed("beam_unknown") == 1
    assert kit.metric(service, "hydra_keeper_alarms_total") == 2
    assert kit.metric(service, "hydra_keeper_beam_on") == -1
    rows = await kit.query(
        own_db_url,
        "SELECT COUNT(*) FROM run_history WHERE plot_type_id = :p AND verdict = 'Bad'",
        p=world.plot_type_id,
    )
    assert rows[0][0] == 5  # every verdict recorded, alarmed or not

    # The IOC comes back: the watcher finds it again by itself.
    await ioc.start(
        {
            f"T{tag}:BEAM": ChannelDouble(value=90.0),
            f"T{tag}:RUN": ChannelInteger(value=80465),
            f"T{tag}:RUNTYPE": ChannelString(value="physics"),
        }
    )
    await eventually(beam_is("on", run_number=80465), "the watcher hears the IOC again")
    assert watcher.reading().run_number == 80465


async def _read(ctx: ClientContext, name: str) -> Any:
    (pv,) = await ctx.get_pvs(name)
    response = await pv.read(timeout=5)
    return pv_value(response.data)


async def test_published_pvs_show_a_bad_verdict_arrive(
    epics_env: dict[str, str], own_db_url: str, keeper_factory: Any, kit: ModuleType
) -> None:
    assert_loopback_only()
    prefix = f"H{uuid.uuid4().hex[:6].upper()}:"
    world = await kit.make_world(own_db_url)
    service, client = await keeper_factory(
        own_db_url, epics_publish=True, epics_prefix=prefix, epics_publish_seconds=0.2
    )
    assert service.publisher is not None and service.publisher.port > 0
    await client.record([kit.make_report(world, GOOD)])
    ctx = ClientContext(timeout=5)
    try:
        base = f"{prefix}{world.plot_type}"

        async def reads(name: str, value: Any) -> bool:
            try:
                return bool(await _read(ctx, name) == value)
            except TimeoutError:
                return False

        await eventually(lambda: reads(f"{base}:VERDICT", "Good"), "Good published")
        assert abs(await _read(ctx, f"{base}:CONFIDENCE") - 0.9) < 1e-6
        assert await _read(ctx, f"{base}:ALARM") == 0

        # Two Bads of three raise the alarm: the verdict, the flag and the hall count follow.
        await client.record([kit.make_report(world, BAD)])
        await eventually(lambda: reads(f"{base}:VERDICT", "Bad"), "Bad published")
        await client.record([kit.make_report(world, BAD)])
        await eventually(lambda: reads(f"{base}:ALARM", 1), "alarm published")
        assert abs(await _read(ctx, f"{base}:CONFIDENCE") - 0.9) < 1e-6
        assert await _read(ctx, f"{prefix}ALARMING") >= 1
        assert await _read(ctx, f"{prefix}UNACKED") >= 1
    finally:
        await ctx.disconnect()
