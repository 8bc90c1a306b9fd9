import { api, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { useQuery } from "../lib/useQuery";

/** The news banner on every page (newest items first). */
export function NewsBanner() {
  const { data } = useQuery("news", (signal) => ok(api.GET("/api/news", { signal })), 60_000);
  const items = data?.items ?? [];
  if (items.length === 0) return null;
  return (
    <div className="news" data-testid="news-banner" role="status">
      {items.slice(0, 3).map((n) => (
        <div key={n.id} className={`news-item news-${n.severity}`} data-testid="news-item">
          <strong>{n.title}</strong>
          {n.body && <span className="news-body"> — {n.body}</span>}
          <span className="muted"> ({n.author ? `${n.author}, ` : ""}{formatTime(n.created_at)})</span>
        </div>
      ))}
    </div>
  );
}
