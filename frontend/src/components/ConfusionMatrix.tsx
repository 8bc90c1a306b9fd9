import { api, ok } from "../lib/client";
import { useQuery } from "../lib/useQuery";
import { Sparkline } from "./Histogram";

/**
 * The enhanced confusion matrix: per (true, predicted) cell the count of held-out images and
 * a small histogram of the model's output weights for them (0 to 1).
 */
export function ConfusionMatrix({ modelId }: { modelId: number }) {
  const { data, error } = useQuery(`confusion-${modelId}`, (signal) =>
    ok(api.GET("/api/models/{model_id}/confusion", { params: { path: { model_id: modelId } }, signal })),
  );
  if (error) return <p className="muted">No evaluation: {error}</p>;
  if (!data) return null;
  const cell = (t: string, p: string) => data.cells.find((c) => c.true_label === t && c.predicted_label === p);
  return (
    <table className="confusion" data-testid="confusion-matrix">
      <thead>
        <tr>
          <th className="corner">true ↓ / predicted →</th>
          {data.labels.map((l) => (
            <th key={l}>{l}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {data.labels.map((t) => (
          <tr key={t}>
            <th>{t}</th>
            {data.labels.map((p) => {
              const c = cell(t, p);
              return (
                <td key={p} className={t === p ? "diagonal" : c && c.count > 0 ? "off-diagonal" : ""} data-testid="confusion-cell" data-true={t} data-predicted={p}>
                  <span className="count">{c?.count ?? 0}</span>
                  {c && c.histogram.length > 0 && <Sparkline counts={c.histogram} color={t === p ? "#6fcf97" : "#ff8a80"} />}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
