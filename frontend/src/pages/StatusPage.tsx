import { useState } from "react";
import { DriftTable } from "../components/DriftPanel";
import { Histogram } from "../components/Histogram";
import { ListTable } from "../components/ListTable";
import { Notice } from "../components/Notice";
import { WindowSelect } from "../components/WindowSelect";
import { api, ok } from "../lib/client";
import { duration, formatTime } from "../lib/format";
import type { Status } from "../lib/types";
import { useQuery } from "../lib/useQuery";

const WINDOWS = [1, 6, 24, 72, 168];
// Stages in the order an image passes them (the API lists them alphabetically).
const PIPELINE = ["feed", "queue", "dispatch", "predict", "report", "keep", "total"];

function pipelineOrder<T extends { stage: string }>(stages: T[]): T[] {
  const rank = (s: string) => (PIPELINE.includes(s) ? PIPELINE.indexOf(s) : PIPELINE.length);
  return [...stages].sort((a, b) => rank(a.stage) - rank(b.stage) || a.stage.localeCompare(b.stage));
}

/** Indices of the bin edges that are powers of ten (the time axis' labels). */
function decades(edges: number[]): number[] {
  return edges.flatMap((e, i) => (e > 0 && Math.abs(Math.log10(e) - Math.round(Math.log10(e))) < 1e-6 ? [i] : []));
}

/** Seconds, short (axis labels and bin tooltips): 100 µs, 1.8 ms, 10 s. */
function shortDuration(s: number): string {
  if (s === 0) return "0";
  if (s < 1e-3) return `${Number((s * 1e6).toPrecision(2))} µs`;
  if (s < 1) return `${Number((s * 1e3).toPrecision(2))} ms`;
  return `${Number(s.toPrecision(2))} s`;
}

/** Scalar figures a service reports about itself (queue depth, in flight, ...), as text. */
function detailText(details: Record<string, unknown>): string {
  return Object.entries(details)
    .filter(([, v]) => ["number", "string", "boolean"].includes(typeof v))
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)}`)
    .join("  ");
}

/** The queue depth any service reports (the balancer's, where it publishes it). */
function queueDepth(status: Status): number | null {
  for (const s of status.services) {
    const q = s.details.queue_depth;
    if (typeof q === "number") return q;
  }
  return null;
}

/** Service health, processing-time distributions, averages per run, queue and throughput. */
export function StatusPage() {
  const [hours, setHours] = useState(24);
  const { data, error } = useQuery(`status-${hours}`, (signal) => ok(api.GET("/api/status", { params: { query: { hours } }, signal })), 15_000);
  const ordered = pipelineOrder(data?.stages ?? []);
  const stages = ordered.map((s) => s.stage);
  const lastHour = data?.throughput.at(-1);
  const depth = data ? queueDepth(data) : null;
  return (
    <section className="page status">
      <div className="toolbar">
        <WindowSelect label="window" hours={hours} windows={WINDOWS} onChange={setHours} testId="status-hours" />
        {data && <span className="muted">from {data.sampled.toLocaleString()} inferences since {formatTime(data.since)}</span>}
      </div>
      <Notice text={error} />
      {data && (
        <>
          <div className="figures">
            <div data-testid="queue-depth">
              <span className="muted">queue depth</span> <strong>{depth ?? "—"}</strong>
            </div>
            <div data-testid="throughput">
              <span className="muted">throughput</span> <strong>{lastHour ? (lastHour.count / 60).toFixed(1) : "0"}</strong> images/min
              <span className="muted"> (last hour)</span>
            </div>
          </div>
          <h2>Services</h2>
          <ListTable testId="services" columns={["Service", "Instance", "State", "Last seen", "Figures"]} rows={data.services}>
            {(s) => (
              <tr key={`${s.service}/${s.instance}`} data-testid="service-row" data-state={s.state} data-alive={String(s.alive)}>
                <td>{s.service}</td>
                <td>{s.instance}</td>
                <td className={s.alive ? `health-${s.state}` : "health-down"}>{s.alive ? s.state : `${s.state} (silent)`}</td>
                <td>{formatTime(s.last_seen)}</td>
                <td className="muted mono">{detailText(s.details)}</td>
              </tr>
            )}
          </ListTable>
          {data.services.length === 0 && <p className="muted">No service has reported yet.</p>}
          <h2>Model drift</h2>
          <DriftTable />
          <h2>Processing time per stage</h2>
          <div className="timings">
            {ordered.map((t) => (
              <figure key={t.stage} data-testid="timing" data-stage={t.stage}>
                <figcaption>
                  <strong>{t.stage}</strong>{" "}
                  <span className="muted">
                    mean {duration(t.mean)} · median {duration(t.p50)} · 95 % {duration(t.p95)} · {t.count.toLocaleString()} images
                  </span>
                </figcaption>
                <Histogram counts={t.counts} edges={t.bin_edges} width={420} format={shortDuration} ticks={decades(t.bin_edges)} testId={`histogram-${t.stage}`} />
              </figure>
            ))}
          </div>
          <h2>Throughput per hour</h2>
          <Histogram
            counts={data.throughput.map((p) => p.count)}
            width={Math.max(240, data.throughput.length * 14)}
            color="#6fcf97"
            testId="throughput-histogram"
          />
          <h2>Averages per run</h2>
          <table data-testid="run-averages">
            <thead>
              <tr>
                <th>Run</th>
                <th className="num">Images</th>
                {stages.map((s) => (
                  <th key={s} className="num">
                    {s}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.runs.map((r) => (
                <tr key={r.run_number}>
                  <td>{r.run_number}</td>
                  <td className="num">{r.inferences.toLocaleString()}</td>
                  {stages.map((s) => (
                    <td key={s} className="num">
                      {r.mean_seconds[s] === undefined ? "—" : duration(r.mean_seconds[s])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
