import { api, ok } from "../lib/client";
import { useQuery } from "../lib/useQuery";
import { Badge } from "./Badge";

/** Label counts per class for a plot type, and the labellers' leaderboard. */
export function LabelStats({ plotType, colors, version }: { plotType: string; colors: Record<string, string>; version: number }) {
  const counts = useQuery(plotType ? `counts-${plotType}-${version}` : null, (signal) =>
    ok(api.GET("/api/labels/counts", { params: { query: { plot_type: plotType } }, signal })),
  );
  const board = useQuery(`leaderboard-${version}`, (signal) => ok(api.GET("/api/labels/leaderboard", { signal })));
  const rows = counts.data?.counts ?? [];
  const total = rows.reduce((s, c) => s + c.count, 0);
  return (
    <aside className="side">
      <h3>Labels of {plotType}</h3>
      <table data-testid="label-counts">
        <tbody>
          {rows.map((c) => (
            <tr key={c.label} data-testid={`label-count-${c.label}`}>
              <td>
                <Badge label={c.label} colors={{ [c.label]: c.color, ...colors }} />
              </td>
              <td className="num">{c.count.toLocaleString()}</td>
            </tr>
          ))}
          <tr>
            <td>unlabelled</td>
            <td className="num" data-testid="label-count-unlabelled">
              {(counts.data?.unlabelled ?? 0).toLocaleString()}
            </td>
          </tr>
          <tr>
            <td>total labelled</td>
            <td className="num" data-testid="label-count-total">
              {total.toLocaleString()}
            </td>
          </tr>
        </tbody>
      </table>
      <h3>Leaderboard</h3>
      <ol data-testid="leaderboard">
        {(board.data?.items ?? []).slice(0, 10).map((e) => (
          <li key={e.username} data-testid="leaderboard-entry">
            {e.display_name || e.username} <span className="muted">{e.labels.toLocaleString()}</span>
          </li>
        ))}
      </ol>
    </aside>
  );
}
