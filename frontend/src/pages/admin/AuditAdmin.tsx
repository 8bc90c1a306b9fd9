import { useState } from "react";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

interface Filters {
  username: string;
  action: string;
  entity: string;
  since: string;
  until: string;
}

const EMPTY: Filters = { username: "", action: "", entity: "", since: "", until: "" };
// Suggestions only: any recorded kind of thing can be typed.
const ENTITIES = ["user", "plot_type", "classification", "plots", "model", "threshold", "news", "run_condition", "training_run", "training_report", "alarm"];

function isoOrUndefined(local: string): string | undefined {
  return local ? new Date(local).toISOString() : undefined;
}

function compact(value: Record<string, unknown>): string {
  const text = JSON.stringify(value);
  return text === "{}" ? "" : text;
}

/** The audit log, newest first, filtered by who, what and when; pages go back in time by
 * keyset (Older / Newer). */
export function AuditAdmin() {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  // The before_id of every page shown so far; the last one is the page on screen.
  const [cursors, setCursors] = useState<(number | undefined)[]>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery(`audit-${JSON.stringify(filters)}-${cursor ?? ""}`, (signal) =>
    ok(
      api.GET("/api/audit", {
        params: {
          query: {
            limit: 50,
            username: filters.username || undefined,
            action: filters.action || undefined,
            entity: filters.entity || undefined,
            since: isoOrUndefined(filters.since),
            until: isoOrUndefined(filters.until),
            before_id: cursor,
          },
        },
        signal,
      }),
    ),
  );
  const set = (key: keyof Filters) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [key]: e.target.value }));
  const next = page.data?.next_before_id ?? null;
  return (
    <div data-testid="audit-admin">
      <h2>Audit log</h2>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
          setCursors([undefined]);
        }}
      >
        <label className="field">
          user
          <input type="text" value={draft.username} maxLength={64} onChange={set("username")} data-testid="audit-username" />
        </label>
        <label className="field">
          action
          <input type="text" value={draft.action} maxLength={64} onChange={set("action")} placeholder="create, update, grant…" data-testid="audit-action" />
        </label>
        <label className="field">
          thing
          <input type="text" list="audit-entities" value={draft.entity} maxLength={64} onChange={set("entity")} placeholder="any" data-testid="audit-entity" />
          <datalist id="audit-entities">
            {ENTITIES.map((e) => (
              <option key={e} value={e} />
            ))}
          </datalist>
        </label>
        <label className="field">
          since
          <input type="datetime-local" value={draft.since} onChange={set("since")} data-testid="audit-since" />
        </label>
        <label className="field">
          until
          <input type="datetime-local" value={draft.until} onChange={set("until")} data-testid="audit-until" />
        </label>
        <button type="submit" className="primary" data-testid="audit-apply">
          Show
        </button>
      </form>
      <Notice text={page.error} />
      <table data-testid="audit">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>Action</th>
            <th>Thing</th>
            <th>Before</th>
            <th>After</th>
          </tr>
        </thead>
        <tbody>
          {(page.data?.items ?? []).map((a) => (
            <tr key={a.id} data-testid="audit-row" data-username={a.username} data-action={a.action} data-entity={a.entity}>
              <td>{new Date(a.at).toLocaleString()}</td>
              <td>{a.username}</td>
              <td>{a.action}</td>
              <td>
                {a.entity} {a.entity_id}
              </td>
              <td className="json">{compact(a.before)}</td>
              <td className="json">{compact(a.after)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page.data && page.data.items.length === 0 && <p className="muted">Nothing recorded matches.</p>}
      <div className="toolbar">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))} data-testid="audit-newer">
          Newer
        </button>
        <button type="button" disabled={next === null} onClick={() => setCursors((c) => [...c, next ?? undefined])} data-testid="audit-older">
          Older
        </button>
      </div>
    </div>
  );
}
