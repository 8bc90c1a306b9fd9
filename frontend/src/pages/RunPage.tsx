import { useEffect, useMemo, useRef, useState } from "react";
import { CardDetails } from "../components/CardDetails";
import type { Mask } from "../components/MaskEditor";
import { CheckField, Field } from "../components/Form";
import { Notice } from "../components/Notice";
import { RunCard } from "../components/RunCard";
import { beamText, beep, canAcknowledge, newlyRaised, type AlarmInfo, type AlarmState } from "../lib/alarm";
import { useAuth } from "../lib/auth";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { needsAttention, orderCards } from "../lib/ordering";
import { canEditMasks } from "../lib/permissions";
import type { RuntimeItem } from "../lib/types";
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

/**
 * The shift crew's wall: the latest image of every plot type, live. The beep and the flash
 * follow the keeper's alarms (K of N Bad, not every flip); the crew acknowledges them here.
 */
export function RunPage() {
  const { colors, alarmLabels } = useClassifications();
  const { me } = useAuth();
  const [alarmOn, setAlarmOn] = useStoredState("run.alarm", false);
  const [hidden, setHidden] = useStoredState<string[]>("run.hidden", []);
  const [offDetectors, setOffDetectors] = useStoredState<string[]>("run.offDetectors", []);
  const [opacity, setOpacity] = useStoredState("run.heatmapOpacity", 0.5);
  const [cardSize, setCardSize] = useStoredState("run.cardSize", 280);
  const [showHidden, setShowHidden] = useState(false);
  const [details, setDetails] = useState<string | null>(null);
  const [flash, setFlash] = useState<string[]>([]);
  const [ackError, setAckError] = useState("");

  // A verdict flip alone neither beeps nor flashes: the keeper's alarms below do.
  const { cards, connection, lastUpdate, error } = useRuntime(alarmLabels, () => {});
  const beam = useQuery("beam", (signal) => ok(api.GET("/api/beam", { signal })), 5_000);
  const alarms = useQuery("alarms", (signal) => ok(api.GET("/api/alarms", { signal })), 2_000);
  // Masks of accepted problems, drawn on the cards; they change rarely.
  const masks = useQuery("masks", (signal) => ok(api.GET("/api/masks", { signal })), 30_000);
  const maskMap = useMemo(() => new Map<string, Mask[]>((masks.data ?? []).map((m) => [m.plot_type, m.masks])), [masks.data]);
  const alarmMap = useMemo(() => new Map<string, AlarmInfo>((alarms.data ?? []).map((a) => [a.plot_type, a])), [alarms.data]);
  const seen = useRef<Map<string, AlarmState> | null>(null);
  useEffect(() => {
    if (!alarms.data) return;
    const fresh = seen.current === null ? [] : newlyRaised(seen.current, alarms.data);
    seen.current = new Map(alarms.data.map((a) => [a.plot_type, a.state]));
    if (fresh.length > 0) {
      setFlash(fresh);
      if (alarmOn) beep();
    }
  }, [alarms.data, alarmOn]);
  const acknowledge = async (plotType: string) => {
    try {
      await ok(api.POST("/api/alarms/{plot_type}/acknowledge", { params: { path: { plot_type: plotType } } }));
      setAckError("");
      setFlash((old) => old.filter((p) => p !== plotType));
    } catch (err) {
      setAckError(`acknowledge ${plotType}: ${errorText(err)}`);
    }
    alarms.reload();
  };
  const crew = canAcknowledge(me?.role);

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

  const runNumber = beam.data?.run_number ?? all.reduce((m, c) => Math.max(m, c.run_number), 0);
  const raised = (alarms.data ?? []).filter((a) => a.state === "raised").length;
  const acknowledged = (alarms.data ?? []).length - raised;
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
      alarm={alarmMap.get(c.plot_type)}
      onAcknowledge={crew ? () => void acknowledge(c.plot_type) : undefined}
      masks={maskMap.get(c.plot_type)}
    />
  );

  return (
    <section className="page run-page" style={{ ["--card-min" as string]: `${cardSize}px` }}>
      <div className={`status-strip conn-${connection}`} data-testid="status-strip">
        <span>
          Run <strong data-testid="run-number">{runNumber || "—"}</strong>
        </span>
        <span data-testid="beam" data-state={beam.data?.state ?? "unknown"} className={beam.data?.state === "unknown" ? "stale-text" : undefined}>
          {beamText(beam.data)}
        </span>
        <span data-testid="alarm-count" data-raised={raised} data-acknowledged={acknowledged}>
          alarms <strong>{raised}</strong>
          {acknowledged > 0 && ` (+${acknowledged} acknowledged)`}
        </span>
        <span>
          last image <strong data-testid="last-update">{formatTime(newest)}</strong>
        </span>
        <span className="muted">refreshed {lastUpdate ? formatTime(lastUpdate.toISOString()) : "—"}</span>
        <span className="conn" data-testid="sse-state" data-state={connection}>
          ● {CONNECTION_TEXT[connection]}
        </span>
        {flash.length > 0 && (
          <button type="button" className="alarm-flash" onClick={() => setFlash([])} data-testid="new-bad">
            ALARM: {flash.join(", ")} ✕
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
        <Field label="heat map">
          <input
            type="range"
            min={0}
            max={1}
            step={0.05}
            value={opacity}
            onChange={(e) => setOpacity(Number(e.target.value))}
            data-testid="heatmap-opacity"
          />
        </Field>
        <Field label="size">
          <input type="range" min={160} max={520} step={20} value={cardSize} onChange={(e) => setCardSize(Number(e.target.value))} data-testid="card-size" />
        </Field>
        <CheckField
          label="audible alarm"
          checked={alarmOn}
          onChange={(on) => {
            setAlarmOn(on);
            // The click unlocks audio, and the crew hears what the alarm sounds like.
            if (on) beep();
          }}
          testId="alarm-toggle"
        />
        {hidden.length > 0 && (
          <CheckField label={`show ${hidden.length} hidden`} checked={showHidden} onChange={setShowHidden} testId="show-hidden" />
        )}
      </div>

      <Notice text={error && (all.length > 0 ? `${error} — showing the last known state` : error)} />
      <Notice text={ackError} />
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
      {detailCard && (
        <CardDetails
          card={detailCard}
          colors={colors}
          onClose={() => setDetails(null)}
          onMasksSaved={canEditMasks(me, detailCard.plot_type) ? masks.reload : undefined}
        />
      )}
    </section>
  );
}
