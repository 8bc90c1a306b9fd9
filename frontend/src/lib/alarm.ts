// The audible alarm: a short two-tone beep through WebAudio (no sound file to ship).
import type { paths } from "../api/schema";

let context: AudioContext | null = null;

/** Beeps; must first be called from a user gesture (browsers keep audio locked until then). */
export function beep(): void {
  try {
    context ??= new AudioContext();
    const ctx = context;
    void ctx.resume();
    [880, 660].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const start = ctx.currentTime + i * 0.25;
      osc.type = "square";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.23);
    });
  } catch {
    // No audio device (a wall screen without speakers): the visual alarm still works.
  }
}

// The keeper's alarms (K of N, acknowledged until the plot recovers) and the beam state,
// as /api/alarms and /api/beam give them.
type Json<R> = R extends { 200: { content: { "application/json": infer T } } } ? T : never;
export type AlarmInfo = Json<paths["/api/alarms"]["get"]["responses"]>[number];
export type Beam = Json<paths["/api/beam"]["get"]["responses"]>;
export type AlarmState = AlarmInfo["state"];

/** Roles that may acknowledge an alarm: every logged-in role but viewer. */
export function canAcknowledge(role: string | null | undefined): boolean {
  return !!role && role !== "viewer";
}

/** Plot types whose alarm is raised now and was not raised (nor acknowledged) before. */
export function newlyRaised(before: ReadonlyMap<string, AlarmState>, now: readonly AlarmInfo[]): string[] {
  return now.filter((a) => a.state === "raised" && !before.has(a.plot_type)).map((a) => a.plot_type);
}

/** The status strip's beam text: the keeper's reading, with the one threshold. */
export function beamText(beam: Beam | undefined): string {
  if (!beam) return "beam unknown";
  const current = beam.beam_current == null ? "" : `, ${beam.beam_current} nA`;
  const state =
    beam.state === "on"
      ? `beam on${current}`
      : beam.state === "off"
        ? `beam off${current} (≤ ${beam.threshold} nA)`
        : `beam UNKNOWN${beam.source === "epics" ? " (EPICS silent)" : beam.source === "none" ? " (no run conditions)" : ""}`;
  const run = beam.run_type ? ` · ${beam.run_type}` : "";
  const special = beam.special ? " · special run" : "";
  const gate = beam.alarms ? "" : " · alarms suppressed";
  return `${state}${run}${special}${gate}`;
}
