import { splitTable } from "../lib/trainingSet";
import { Badge } from "./Badge";

/** A training set's images per split and label (copies drawn by the sampling included). */
export function TrainingSetTable({ classCounts, labelOrder, colors }: { classCounts: Record<string, unknown>; labelOrder: string[]; colors: Record<string, string> }) {
  const t = splitTable(classCounts, labelOrder);
  if (t.labels.length === 0) return <span className="muted">no counts recorded</span>;
  return (
    <table className="training-set" data-testid="training-set-counts">
      <thead>
        <tr>
          <th>split</th>
          {t.labels.map((l) => (
            <th key={l}>
              <Badge label={l} colors={colors} />
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {t.splits.map((s) => (
          <tr key={s} data-testid="training-set-split" data-split={s}>
            <td>{s}</td>
            {t.labels.map((l) => (
              <td key={l} className="num" data-label={l}>
                {t.counts[s][l].toLocaleString()}
              </td>
            ))}
          </tr>
        ))}
        {t.splits.length > 1 && (
          <tr className="total">
            <td>total</td>
            {t.labels.map((l) => (
              <td key={l} className="num">
                {t.totals[l].toLocaleString()}
              </td>
            ))}
          </tr>
        )}
      </tbody>
    </table>
  );
}
