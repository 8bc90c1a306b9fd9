import { useState } from "react";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import type { PlotType } from "../lib/types";
import { useQuery } from "../lib/useQuery";
import { Notice } from "./Notice";

const ARCHITECTURES = ["small", "inceptionv3", "inceptionv3-cbam"];
const SAMPLING = ["normal", "undersample", "oversample"] as const;
const ACTIVE = new Set(["queued", "running"]);

/** Start a training run for a plot type and follow its progress. */
export function TrainingPanel({ plotType, allowed, onStarted }: { plotType: PlotType; allowed: boolean; onStarted: () => void }) {
  const [architecture, setArchitecture] = useState(ARCHITECTURES[0]);
  const [sampling, setSampling] = useState<(typeof SAMPLING)[number]>(SAMPLING[0]);
  const [error, setError] = useState("");
  const [version, setVersion] = useState(0);
  const runs = useQuery(
    `training-runs-${plotType.name}-${version}`,
    (signal) => ok(api.GET("/api/training-runs", { params: { query: { plot_type: plotType.name } }, signal })),
    // Training takes minutes; a few seconds between looks is plenty.
    5000,
  );
  const items = (runs.data?.items ?? []).filter((r) => r.plot_type_id === plotType.id);
  const start = async () => {
    setError("");
    try {
      await ok(api.POST("/api/training-runs", { body: { plot_type: plotType.name, architecture, sampling } }));
      setVersion((v) => v + 1);
      onStarted();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <div className="training" data-testid="training-panel">
      <div className="toolbar">
        <label className="field">
          architecture
          <select value={architecture} onChange={(e) => setArchitecture(e.target.value)} data-testid="train-architecture">
            {ARCHITECTURES.map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
        </label>
        <label className="field">
          sampling
          <select value={sampling} onChange={(e) => setSampling(e.target.value as (typeof SAMPLING)[number])} data-testid="train-sampling">
            {SAMPLING.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="button" className="primary" disabled={!allowed} onClick={() => void start()} data-testid="start-training">
          Start training
        </button>
      </div>
      <Notice text={error} />
      <table>
        <tbody>
          {items.slice(0, 8).map((r) => (
            <tr key={r.id} data-testid="training-run" data-status={r.status}>
              <td>#{r.id}</td>
              <td>{r.architecture}</td>
              <td>{r.sampling_method}</td>
              <td>
                <progress max={1} value={r.progress} /> {Math.round(r.progress * 100)} %
              </td>
              <td className={`status-${r.status}`}>
                {r.status}
                {ACTIVE.has(r.status) && "…"}
              </td>
              <td className="muted" title={r.message}>
                {r.message.split("\n").at(-1)}
              </td>
              <td className="muted">{formatTime(r.updated_at)}</td>
              <td>{r.model_id !== null && `model #${r.model_id}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
