import { useState } from "react";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import type { Threshold } from "../lib/types";
import { useQuery } from "../lib/useQuery";
import { Badge } from "./Badge";
import { Notice } from "./Notice";

function ThresholdRow({
  modelId,
  threshold,
  editable,
  colors,
  onSaved,
}: {
  modelId: number;
  threshold: Threshold;
  editable: boolean;
  colors: Record<string, string>;
  onSaved: () => void;
}) {
  const [value, setValue] = useState(threshold.threshold.toFixed(2));
  const [error, setError] = useState("");
  const number = Number(value);
  const valid = value !== "" && number >= 0 && number <= 1;
  const save = async () => {
    setError("");
    try {
      await ok(
        api.PUT("/api/models/{model_id}/thresholds/{label}", {
          params: { path: { model_id: modelId, label: threshold.label } },
          body: { value: number },
        }),
      );
      onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <tr data-testid="threshold-row" data-label={threshold.label}>
      <td>
        <Badge label={threshold.label} colors={colors} />
      </td>
      <td>
        {editable ? (
          <>
            <input
              type="number"
              min={0}
              max={1}
              step={0.01}
              value={value}
              onChange={(e) => setValue(e.target.value)}
              aria-invalid={!valid}
              data-testid="threshold-input"
              data-label={threshold.label}
            />
            <button type="button" disabled={!valid || number === threshold.threshold} onClick={() => void save()} data-testid="threshold-save">
              Save
            </button>
          </>
        ) : (
          <span data-testid="threshold-value">{threshold.threshold.toFixed(2)}</span>
        )}
        {error && <span className="error-text"> {error}</span>}
      </td>
      <td data-testid="threshold-set-by">
        {threshold.method === "max_f1" ? "max F1" : threshold.method}
        {threshold.set_by && ` · ${threshold.set_by}`}
        <span className="muted"> {formatTime(threshold.set_at)}</span>
      </td>
    </tr>
  );
}

/** Per-label thresholds of a model; editable only for users with the permission. */
export function ThresholdEditor({ modelId, editable, colors }: { modelId: number; editable: boolean; colors: Record<string, string> }) {
  const { data, error, reload } = useQuery(`thresholds-${modelId}`, (signal) =>
    ok(api.GET("/api/models/{model_id}/thresholds", { params: { path: { model_id: modelId } }, signal })),
  );
  return (
    <>
      <Notice text={error} />
      <table className="thresholds" data-testid="thresholds">
        <thead>
          <tr>
            <th>Label</th>
            <th>Threshold</th>
            <th>Set by</th>
          </tr>
        </thead>
        <tbody>
          {(data?.items ?? []).map((t) => (
            // Keyed by the stored value so a saved threshold resets the row's input.
            <ThresholdRow key={`${t.label}-${t.threshold}-${t.set_at}`} modelId={modelId} threshold={t} editable={editable} colors={colors} onSaved={reload} />
          ))}
        </tbody>
      </table>
      {!editable && <p className="muted">Editing thresholds needs the permission (developer, admin, or an expert of this plot type).</p>}
    </>
  );
}
