import { useState } from "react";
import type { components } from "../../api/schema";
import { Notice } from "../../components/Notice";
import { api, errorText, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

type Severity = components["schemas"]["NewsIn"]["severity"];
const SEVERITIES: NonNullable<Severity>[] = ["info", "warning", "critical"];

/** News: post an item for every page's banner, expire it now, or delete it. */
export function NewsAdmin() {
  const [version, setVersion] = useState(0);
  const [error, setError] = useState("");
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [severity, setSeverity] = useState<NonNullable<Severity>>("info");
  const [expires, setExpires] = useState("");
  // "Expired" is judged at the time of the answer (not during render, which must be pure).
  const list = useQuery(`admin-news-${version}`, async (signal) => ({
    page: await ok(api.GET("/api/news", { params: { query: { include_expired: true, limit: 500 } }, signal })),
    at: Date.now(),
  }));
  const run = async (call: () => Promise<unknown>) => {
    try {
      await call();
      setError("");
      setVersion((v) => v + 1);
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    }
  };
  const post = async () => {
    const expires_at = expires ? new Date(expires).toISOString() : null;
    if (await run(() => ok(api.POST("/api/news", { body: { title, body, severity, expires_at } })))) {
      setTitle("");
      setBody("");
      setExpires("");
    }
  };
  const now = list.data?.at ?? 0;
  return (
    <div data-testid="news-admin">
      <h2>News</h2>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void post();
        }}
      >
        <label className="field">
          title
          <input type="text" value={title} maxLength={255} onChange={(e) => setTitle(e.target.value)} data-testid="news-title" />
        </label>
        <label className="field">
          text
          <input type="text" value={body} maxLength={20000} onChange={(e) => setBody(e.target.value)} data-testid="news-body" />
        </label>
        <label className="field">
          severity
          <select value={severity} onChange={(e) => setSeverity(e.target.value as NonNullable<Severity>)} data-testid="news-severity">
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          expires
          <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} data-testid="news-expires" />
        </label>
        <button type="submit" className="primary" disabled={!title.trim()} data-testid="news-post">
          Post
        </button>
      </form>
      <Notice text={list.error || error} />
      <table data-testid="news-list">
        <thead>
          <tr>
            <th>Title</th>
            <th>Severity</th>
            <th>By</th>
            <th>Posted</th>
            <th>Expires</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(list.data?.page.items ?? []).map((n) => {
            const expired = n.expires_at !== null && new Date(n.expires_at).getTime() <= now;
            const path = { news_id: n.id };
            return (
              <tr key={n.id} className={expired ? "expired" : ""} data-testid="news-row" data-title={n.title} data-expired={String(expired)}>
                <td>
                  {n.title}
                  {n.body && <div className="muted">{n.body}</div>}
                </td>
                <td className={`news-${n.severity}`}>{n.severity}</td>
                <td>{n.author}</td>
                <td>{new Date(n.created_at).toLocaleString()}</td>
                <td>{n.expires_at ? new Date(n.expires_at).toLocaleString() : "never"}</td>
                <td className="actions">
                  <button
                    type="button"
                    disabled={expired}
                    onClick={() => void run(() => ok(api.PATCH("/api/news/{news_id}", { params: { path }, body: { expires_at: new Date().toISOString() } })))}
                    data-testid="news-expire"
                  >
                    Expire now
                  </button>
                  <button type="button" onClick={() => void run(() => ok(api.DELETE("/api/news/{news_id}", { params: { path } })))} data-testid="news-delete">
                    Delete
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
