import { useState } from "react";
import type { components } from "../api/schema";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import type { PlotType, TrainingRun } from "../lib/types";
import { useQuery } from "../lib/useQuery";
import { Field, Options } from "./Form";
import { Notice } from "./Notice";

type RunIn = components["schemas"]["TrainingRunIn"];
type Architecture = NonNullable<RunIn["architecture"]>;
type Sampling = NonNullable<RunIn["sampling"]>;
type Init = NonNullable<RunIn["init"]>;

const ACTIVE = new Set(["queued", "running"]);
// "" in a select: leave it to the plot type's default, then Hydra's.
const DEFAULT = "";

/** The value the run will get when the form leaves a choice to the defaults. */
function fallback(own: string | null | undefined, hydra: string | undefined): string {
  return own || hydra || "";
}

/** One queued or finished run, with a Cancel button while it is queued or running. */
function RunRow({ run, allowed, onChanged }: { run: TrainingRun; allowed: boolean; onChanged: (error: string) => void }) {
  const cancel = async () => {
    try {
      await ok(api.POST("/api/training-runs/{run_id}/cancel", { params: { path: { run_id: run.id } } }));
      onChanged("");
    } catch (err) {
      onChanged(errorText(err));
    }
  };
  const epochs = run.options.epochs;
  return (
    <tr data-testid="training-run" data-status={run.status} data-run-id={run.id}>
      <td>#{run.id}</td>
      <td>{run.architecture}</td>
      <td>{run.sampling_method}</td>
      <td className="muted">
        {typeof epochs === "number" ? `${epochs} epochs` : "default epochs"}
        {typeof run.options.init === "string" && `, ${run.options.init}`}
      </td>
      <td>
        <progress max={1} value={run.progress} /> {Math.round(run.progress * 100)} %
      </td>
      <td className={`status-${run.status}`}>
        {run.status}
        {ACTIVE.has(run.status) && "…"}
      </td>
      <td className="muted" title={run.message}>
        {run.message.split("\n").at(-1)}
      </td>
      <td className="muted">
        {formatTime(run.updated_at)} {run.requested_by && `by ${run.requested_by}`}
      </td>
      <td>
        {run.model_id !== null && `model #${run.model_id}`}
        {ACTIVE.has(run.status) && (
          <button type="button" disabled={!allowed} onClick={() => void cancel()} data-testid="cancel-training">
            Cancel
          </button>
        )}
      </td>
    </tr>
  );
}

/** Start a training run for a plot type (architecture, sampling, epochs, start), follow the
 * queue and the progress, cancel; admins also set the plot type's training defaults. */
export function TrainingPanel({
  plotType,
  allowed,
  isAdmin,
  onStarted,
  onPlotTypeChanged,
}: {
  plotType: PlotType;
  allowed: boolean;
  isAdmin: boolean;
  onStarted: () => void;
  onPlotTypeChanged: () => void;
}) {
  const [architecture, setArchitecture] = useState<Architecture | "">(DEFAULT);
  const [sampling, setSampling] = useState<Sampling | "">(DEFAULT);
  const [init, setInit] = useState<Init | "">(DEFAULT);
  const [epochs, setEpochs] = useState("");
  const [error, setError] = useState("");
  const [info, setInfo] = useState("");
  const [version, setVersion] = useState(0);
  const options = useQuery("training-options", (signal) => ok(api.GET("/api/training-options", { signal })));
  const runs = useQuery(
    `training-runs-${plotType.name}-${version}`,
    (signal) => ok(api.GET("/api/training-runs", { params: { query: { plot_type: plotType.name, limit: 20 } }, signal })),
    // Training takes minutes; a few seconds between looks is plenty.
    5000,
  );
  const opts = options.data;
  const items = (runs.data?.items ?? []).filter((r) => r.plot_type_id === plotType.id);
  const active = items.filter((r) => ACTIVE.has(r.status));
  const finished = items.filter((r) => !ACTIVE.has(r.status)).slice(0, 6);
  const effectiveArch = architecture || fallback(plotType.default_architecture, opts?.default_architecture);
  const effectiveSampling = sampling || fallback(plotType.default_sampling, opts?.default_sampling);
  const defaultInit = opts?.default_init[effectiveArch] ?? "";
  const epochsValue = epochs.trim() === "" ? null : Number(epochs);
  const epochsBad = epochsValue !== null && (!Number.isInteger(epochsValue) || epochsValue < 1 || epochsValue > 1000);

  const start = async () => {
    setError("");
    setInfo("");
    const body: RunIn = { plot_type: plotType.name };
    if (architecture) body.architecture = architecture;
    if (sampling) body.sampling = sampling;
    if (init) body.init = init;
    if (epochsValue !== null) body.epochs = epochsValue;
    try {
      const run = await ok(api.POST("/api/training-runs", { body }));
      setInfo(run.status === "queued" ? `Run #${run.id} is queued: it starts when the plot type's current run ends.` : `Run #${run.id} ${run.status}.`);
      setVersion((v) => v + 1);
      onStarted();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const saveDefaults = async () => {
    setError("");
    setInfo("");
    try {
      await ok(
        api.PATCH("/api/plot-types/{plot_type_id}", {
          params: { path: { plot_type_id: plotType.id } },
          body: { default_architecture: architecture || null, default_sampling: sampling || null },
        }),
      );
      setInfo("Saved as this plot type's training defaults.");
      setArchitecture(DEFAULT);
      setSampling(DEFAULT);
      onPlotTypeChanged();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const changed = (message: string) => {
    setError(message);
    setVersion((v) => v + 1);
  };

  return (
    <div className="training" data-testid="training-panel">
      <div className="toolbar">
        <Field label="architecture">
          <select value={architecture} onChange={(e) => setArchitecture(e.target.value as Architecture | "")} data-testid="train-architecture">
            <option value={DEFAULT}>default ({fallback(plotType.default_architecture, opts?.default_architecture) || "…"})</option>
            <Options values={opts?.architectures ?? []} />
          </select>
        </Field>
        <Field label="sampling">
          <select value={sampling} onChange={(e) => setSampling(e.target.value as Sampling | "")} data-testid="train-sampling">
            <option value={DEFAULT}>default ({fallback(plotType.default_sampling, opts?.default_sampling) || "…"})</option>
            <Options values={opts?.sampling_methods ?? []} />
          </select>
        </Field>
        <Field label="epochs">
          <input
            type="number"
            min={1}
            max={1000}
            value={epochs}
            placeholder="default"
            onChange={(e) => setEpochs(e.target.value)}
            style={{ width: "6em" }}
            data-testid="train-epochs"
          />
        </Field>
        <Field label="start">
          <select value={init} onChange={(e) => setInit(e.target.value as Init | "")} data-testid="train-init">
            <option value={DEFAULT}>default ({defaultInit || "…"})</option>
            {(opts?.inits ?? []).map((i) => (
              <option key={i} value={i} disabled={i === "imagenet" && opts?.default_init[effectiveArch] !== "imagenet"}>
                {i}
              </option>
            ))}
          </select>
        </Field>
        <button type="button" className="primary" disabled={!allowed || epochsBad} onClick={() => void start()} data-testid="start-training">
          Start training
        </button>
        {isAdmin && (
          <button type="button" onClick={() => void saveDefaults()} data-testid="save-training-defaults" title="Architecture and sampling as chosen here ('default' clears them)">
            Save as plot-type defaults
          </button>
        )}
      </div>
      <p className="muted">
        Will train <strong data-testid="train-effective">{effectiveArch || "…"}</strong> with <strong>{effectiveSampling || "…"}</strong> sampling. One run per plot type trains at a time;
        later ones wait in the queue.
      </p>
      <Notice text={error} />
      <Notice kind="info" text={info} />
      <table>
        <tbody>
          {active.map((r) => (
            <RunRow key={r.id} run={r} allowed={allowed} onChanged={changed} />
          ))}
          {finished.map((r) => (
            <RunRow key={r.id} run={r} allowed={allowed} onChanged={changed} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
