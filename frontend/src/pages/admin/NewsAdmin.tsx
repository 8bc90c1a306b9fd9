import { useState } from "react";
import type { components } from "../../api/schema";
import { useAdminActions } from "../../components/admin/useAdminActions";
import { Field, Options, SubmitForm, TextField } from "../../components/Form";
import { ListTable } from "../../components/ListTable";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

type Severity = components["schemas"]["NewsIn"]["severity"];
const SEVERITIES: NonNullable<Severity>[] = ["info", "warning", "critical"];

/** News: post an item for every page's banner, expire it now, or delete it. */
export function NewsAdmin() {
  const { version, error, act } = useAdminActions();
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [severity, setSeverity] = useState<NonNullable<Severity>>("info");
  const [expires, setExpires] = useState("");
  // "Expired" is judged at the time of the answer (not during render, which must be pure).
  const list = useQuery(`admin-news-${version}`, async (signal) => ({
    page: await ok(api.GET("/api/news", { params: { query: { include_expired: true, limit: 500 } }, signal })),
    at: Date.now(),
  }));
  const post = async () => {
    const expires_at = expires ? new Date(expires).toISOString() : null;
    if (await act(() => ok(api.POST("/api/news", { body: { title, body, severity, expires_at } })))) {
      setTitle("");
      setBody("");
      setExpires("");
    }
  };
  const now = list.data?.at ?? 0;
  return (
    <div data-testid="news-admin">
      <h2>News</h2>
      <SubmitForm onSubmit={() => void post()} submit="Post" submitTestId="news-post" disabled={!title.trim()}>
        <TextField label="title" value={title} maxLength={255} onChange={setTitle} testId="news-title" />
        <TextField label="text" value={body} maxLength={20000} onChange={setBody} testId="news-body" />
        <Field label="severity">
          <select value={severity} onChange={(e) => setSeverity(e.target.value as NonNullable<Severity>)} data-testid="news-severity">
            <Options values={SEVERITIES} />
          </select>
        </Field>
        <Field label="expires">
          <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} data-testid="news-expires" />
        </Field>
      </SubmitForm>
      <Notice text={list.error || error} />
      <ListTable testId="news-list" columns={["Title", "Severity", "By", "Posted", "Expires", ""]} rows={list.data?.page.items ?? []}>
        {(n) => {
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
                  onClick={() => void act(() => ok(api.PATCH("/api/news/{news_id}", { params: { path }, body: { expires_at: new Date().toISOString() } })))}
                  data-testid="news-expire"
                >
                  Expire now
                </button>
                <button type="button" onClick={() => void act(() => ok(api.DELETE("/api/news/{news_id}", { params: { path } })))} data-testid="news-delete">
                  Delete
                </button>
              </td>
            </tr>
          );
        }}
      </ListTable>
    </div>
  );
}
