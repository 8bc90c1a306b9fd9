"""The chart's EPICS values: status PVs off by default; on, a Service (TCP and UDP), the
keeper's Channel Access environment and the NetworkPolicy rules; the beam PVs and alarm
rules reach the keeper and the API through the shared settings ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy import check_chart as cc

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "hydra-check"


SMALL = cc.CHART / "values-small.yaml"


def _named(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_status_pvs_are_off_by_default() -> None:
    objects = cc.helm_template(SMALL)
    assert f"{RELEASE}-keeper-epics" not in _named(objects, "Service")
    env = _named(objects, "ConfigMap")[f"{RELEASE}-env"]["data"]
    assert env["HYDRA_EPICS_PUBLISH"] == "false" and env["HYDRA_EPICS_BEAM_CURRENT_PV"] == ""
    assert (env["HYDRA_ALARM_BAD_COUNT"], env["HYDRA_ALARM_WINDOW"]) == ("2", "3")


def test_epics_values_turn_on_the_status_server_and_the_beam_pvs() -> None:
    objects = cc.helm_template(
        SMALL,
        [
            "keeper.epics.publish.enabled=true",
            "keeper.epics.publish.prefix=HALLD:HYDRA:",
            "keeper.epics.publish.allowFrom[0]=10.1.0.0/16",
            "keeper.epics.beamCurrentPv=HALLD:BEAM:CURRENT",
            "keeper.epics.addrList=10.2.0.5",
            "keeper.epics.egressCidrs[0]=10.2.0.0/24",
            "keeper.alarms.windowOverrides.FCAL_occupancy[0]=3",
            "keeper.alarms.windowOverrides.FCAL_occupancy[1]=5",
        ],
    )
    env = _named(objects, "ConfigMap")[f"{RELEASE}-env"]["data"]
    assert env["HYDRA_EPICS_PUBLISH"] == "true" and env["HYDRA_EPICS_PREFIX"] == "HALLD:HYDRA:"
    assert env["HYDRA_EPICS_BEAM_CURRENT_PV"] == "HALLD:BEAM:CURRENT"
    assert json.loads(env["HYDRA_ALARM_WINDOW_OVERRIDES"]) == {"FCAL_occupancy": [3, 5]}
    service = _named(objects, "Service")[f"{RELEASE}-keeper-epics"]
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        (5064, "TCP"),
        (5064, "UDP"),
    }
    keeper = _named(objects, "Deployment")[f"{RELEASE}-keeper"]
    container = keeper["spec"]["template"]["spec"]["containers"][0]
    ca_env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("EPICS_")}
    assert ca_env["EPICS_CA_ADDR_LIST"] == "10.2.0.5"
    assert ca_env["EPICS_CA_AUTO_ADDR_LIST"] == "NO"
    assert ca_env["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] == "NO"
    policy = _named(objects, "NetworkPolicy")[f"{RELEASE}-keeper"]["spec"]
    ca_in = [r for r in policy["ingress"] if {"port": 5064, "protocol": "UDP"} in r["ports"]]
    assert [r["from"] for r in ca_in] == [[{"ipBlock": {"cidr": "10.1.0.0/16"}}]]
    ca_out = [r for r in policy["egress"] if {"ipBlock": {"cidr": "10.2.0.0/24"}} in r["to"]]
    assert len(ca_out) == 1 and {"protocol": "UDP", "port": 5064} in ca_out[0]["ports"]
