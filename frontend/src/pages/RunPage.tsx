import { useMemo, useState } from "react";
import { CardDetails } from "../components/CardDetails";
import { Notice } from "../components/Notice";
import { RunCard } from "../components/RunCard";
import { beep } from "../lib/alarm";
import { api, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { needsAttention, orderCards } from "../lib/ordering";
import type { RunCondition, RuntimeItem } from "../lib/types";
import { useClassifications } from "../lib/useClassColors";
import { useQuery } from "../lib/useQuery";
import { useRuntime, type Connection } from "../lib/useRuntime";
import { useStoredState } from "../lib/useStoredState";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline (retrying)",
};

function beamText(condition: RunCondition | undefined): string {
  if (!condition) return "unknown";
  const current = condition.beam_current == null ? "beam unknown" : condition.beam_current > 0 ? `beam on, ${condition.beam_current} nA` : "beam off";
  return `${current}${condition.run_type ? ` · ${condition.run_type}` : ""}${condition.special ? " · special run" : ""}`;
}

/** The shift crew's wall: the latest image of every plot type, live. */
export function RunPage() {
  const { colors, alarmLabels } = useClassifications();
  const [alarmOn, setAlarmOn] = useStoredState("run.alarm", false);
  const [hidden, setHidden] = useStoredState<string[]>("run.hidden", []);
  const [offDetectors, setOffDetectors] = useStoredState<string[]>("run.offDetectors", []);
  const [opacity, setOpacity] = useStoredState("run.heatmapOpacity", 0.5);
  const [cardSize, setCardSize] = useStoredState("run.cardSize", 280);
  const [showHidden, setShowHidden] = useState(false);
  const [details, setDetails] = useState<string | null>(null);
  const [flash, setFlash] = useState<string[]>([]);

  const { cards, connection, lastUpdate, error } = useRuntime(alarmLabels, (plotTypes) => {
    setFlash(plotTypes);
    if (alarmOn) beep();
  });
  const conditions = useQuery("run-conditions", (signal) => ok(api.GET("/api/run-conditions", { signal })), 60_000);

  const all = useMemo(() => [...cards.values()], [cards]);
  const detectors = useMemo(() => [...new Set(all.map((c) => c.detector || "other"))].sort(), [all]);
  const visible = useMemo(() => {
    const hide = new Set(hidden);
    const off = new Set(offDetectors);
    return orderCards(
      all.filter((c) => (showHidden || !hide.has(c.plot_type)) && !off.has(c.detector || "other")),
      alarmLabels,
    );
  }, [all, hidden, offDetectors, showHidden, alarmLabels]);
  const bad = visible.filter((c) => needsAttention(c, alarmLabels));
  const rest = visible.filter((c) => !needsAttention(c, alarmLabels));

  const runNumber = all.reduce((m, c) => Math.max(m, c.run_number), 0);
  const condition = (conditions.data?.items ?? []).filter((c) => c.run_number === runNumber).at(-1) ?? conditions.data?.items.at(-1);
  const newest = all.reduce<string | null>((m, c) => (m === null || c.time > m ? c.time : m), null);
  const detailCard = details === null ? undefined : cards.get(details);

  const toggleDetector = (d: string) => setOffDetectors((old) => (old.includes(d) ? old.filter((x) => x !== d) : [...old, d]));
  const renderCard = (c: RuntimeItem) => (
    <RunCard
      key={c.plot_type}
      card={c}
      colors={colors}
      heatmapOpacity={opacity}
      onHide={() => setHidden((old) => (old.includes(c.plot_type) ? old.filter((x) => x !== c.plot_type) : [...old, c.plot_type]))}
      onDetails={() => setDetails(c.plot_type)}
    />
  );

  return (
    <section className="page run-page" style={{ ["--card-min" as string]: `${cardSize}px` }}>
      <div className={`status-strip conn-${connection}`} data-testid="status-strip">
        <span>
          Run <strong data-testid="run-number">{runNumber || "—"}</strong>
        </span>
        <span data-testid="beam">{beamText(condition)}</span>
        <span>
          last image <strong data-testid="last-update">{formatTime(newest)}</strong>
        </span>
        <span className="muted">refreshed {lastUpdate ? formatTime(lastUpdate.toISOString()) : "—"}</span>
        <span className="conn" data-testid="sse-state" data-state={connection}>
          ● {CONNECTION_TEXT[connection]}
        </span>
        {flash.length > 0 && (
          <button type="button" className="alarm-flash" onClick={() => setFlash([])} data-testid="new-bad">
            NEW BAD: {flash.join(", ")} ✕
          </button>
        )}
      </div>

      <div className="toolbar">
        <div className="chips" data-testid="detector-filters">
          {detectors.map((d) => (
            <label key={d} className={`chip${offDetectors.includes(d) ? " off" : ""}`}>
              <input type="checkbox" checked={!offDetectors.includes(d)} onChange={() => toggleDetector(d)} data-testid={`detector-filter-${d}`} />
              {d}
            </label>
          ))}
        </div>
        <label className="field">
          heat map
          <input
            type="range"
            min={0}
            max={1}
            step={0.05}
            value={opacity}
            onChange={(e) => setOpacity(Number(e.target.value))}
            data-testid="heatmap-opacity"
          />
        </label>
        <label className="field">
          size
          <input type="range" min={160} max={520} step={20} value={cardSize} onChange={(e) => setCardSize(Number(e.target.value))} data-testid="card-size" />
        </label>
        <label className="field">
          <input
            type="checkbox"
            checked={alarmOn}
            onChange={(e) => {
              setAlarmOn(e.target.checked);
              // The click unlocks audio, and the crew hears what the alarm sounds like.
              if (e.target.checked) beep();
            }}
            data-testid="alarm-toggle"
          />
          audible alarm
        </label>
        {hidden.length > 0 && (
          <label className="field">
            <input type="checkbox" checked={showHidden} onChange={(e) => setShowHidden(e.target.checked)} data-testid="show-hidden" />
            show {hidden.length} hidden
          </label>
        )}
      </div>

      <Notice text={error && (all.length > 0 ? `${error} — showing the last known state` : error)} />
      {all.length === 0 && !error && <Notice kind="info" text={connection === "connecting" ? "Loading…" : "No plots analysed yet."} />}

      {bad.length > 0 && (
        <div className="bad-strip" data-testid="bad-strip">
          <h2>BAD PLOTS ({bad.length})</h2>
          <div className="grid">{bad.map(renderCard)}</div>
        </div>
      )}
      <div className="grid" data-testid="run-grid">
        {rest.map(renderCard)}
      </div>
      {detailCard && <CardDetails card={detailCard} colors={colors} onClose={() => setDetails(null)} />}
    </section>
  );
}
