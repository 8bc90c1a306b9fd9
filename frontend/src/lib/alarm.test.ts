import { describe, expect, it } from "vitest";
import { beamText, canAcknowledge, newlyRaised, type AlarmInfo, type AlarmState, type Beam } from "./alarm";

function alarm(plot_type: string, state: AlarmState): AlarmInfo {
  return { plot_type, state, raised_at: null, acknowledged_by: "", acknowledged_at: null, cleared_at: null, run_number: 1 };
}

const beam: Beam = {
  source: "epics",
  state: "on",
  beam_current: 150,
  threshold: 1,
  run_number: 7,
  run_type: "physics",
  special: false,
  alarms: true,
  reason: "",
  unknown_policy: "alarm",
  heard_at: null,
};

describe("newlyRaised", () => {
  it("names alarms raised since the last look, not acknowledged or known ones", () => {
    const before = new Map<string, AlarmState>([["a", "raised"], ["b", "acknowledged"]]);
    expect(newlyRaised(before, [alarm("a", "raised"), alarm("b", "acknowledged"), alarm("c", "raised"), alarm("d", "acknowledged")])).toEqual(["c"]);
  });
});

describe("beamText", () => {
  it("says on only above the threshold the keeper uses, and unknown when silent", () => {
    expect(beamText(beam)).toBe("beam on, 150 nA · physics");
    expect(beamText({ ...beam, state: "off", beam_current: 0.5, alarms: false, reason: "beam_off" })).toBe("beam off, 0.5 nA (≤ 1 nA) · physics · alarms suppressed");
    expect(beamText({ ...beam, state: "unknown" })).toContain("UNKNOWN (EPICS silent)");
    expect(beamText({ ...beam, special: true, alarms: false, run_type: "cosmics" })).toBe("beam on, 150 nA · cosmics · special run · alarms suppressed");
    expect(beamText(undefined)).toBe("beam unknown");
  });
});

describe("canAcknowledge", () => {
  it("lets every logged-in role but viewer acknowledge", () => {
    expect(canAcknowledge("labeler")).toBe(true);
    expect(canAcknowledge("viewer")).toBe(false);
    expect(canAcknowledge(undefined)).toBe(false);
  });
});
