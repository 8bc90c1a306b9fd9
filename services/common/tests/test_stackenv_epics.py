"""A local stack (``hydra up``, ``make demo``, the browser and drill stacks) keeps EPICS
Channel Access on loopback unless the hall configured its own address lists."""

from __future__ import annotations

from hydra_common.stackenv import EPICS_LOOPBACK, Ports, stack_environment


def test_a_local_stack_keeps_channel_access_on_loopback() -> None:
    env = stack_environment(Ports.free(), base={})
    assert {k: env[k] for k in EPICS_LOOPBACK} == {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    }
    hall = stack_environment(Ports.free(), base={"EPICS_CA_ADDR_LIST": "10.2.0.5"})
    assert hall["EPICS_CA_ADDR_LIST"] == "10.2.0.5" and hall["EPICS_CA_AUTO_ADDR_LIST"] == "NO"
