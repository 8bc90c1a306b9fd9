import { api, ok } from "../lib/client";
import { useQuery } from "../lib/useQuery";

/** The deployment's figures, in the header. */
export function SummaryBar() {
  const { data } = useQuery("summary", (signal) => ok(api.GET("/api/summary", { signal })), 30_000);
  if (!data) return null;
  const figures: [string, string, number][] = [
    ["labelled", "labelled images", data.labelled_images],
    ["plot-types", "plot types", data.plot_types],
    ["active-models", "active models", data.active_models],
    ["bad-runs", "runs with a bad image", data.runs_with_bad],
    ["analysed", "analysed", data.total_analysed],
  ];
  return (
    <dl className="summary" data-testid="summary">
      {figures.map(([id, name, value]) => (
        <div key={id} data-testid={`summary-${id}`}>
          <dt>{name}</dt>
          <dd>{value.toLocaleString()}</dd>
        </div>
      ))}
    </dl>
  );
}
