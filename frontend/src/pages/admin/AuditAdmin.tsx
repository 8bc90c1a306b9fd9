import { useState } from "react";
import { FilterBar, TimeWindow } from "../../components/FilterBar";
import { Field, TextField } from "../../components/Form";
import { ListTable } from "../../components/ListTable";
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
  const next = page.data?.next_before_id ?? null;
  return (
    <div data-testid="audit-admin">
      <h2>Audit log</h2>
      <FilterBar
        value={filters}
        onApply={(f) => {
          setFilters(f);
          setCursors([undefined]);
        }}
        submit="Show"
        submitTestId="audit-apply"
        fields={(draft, set) => (
          <>
            <TextField label="user" value={draft.username} maxLength={64} onChange={set("username")} testId="audit-username" />
            <TextField label="action" value={draft.action} maxLength={64} onChange={set("action")} placeholder="create, update, grant…" testId="audit-action" />
            <Field label="thing">
              <input type="text" list="audit-entities" value={draft.entity} maxLength={64} onChange={set("entity")} placeholder="any" data-testid="audit-entity" />
              <datalist id="audit-entities">
                {ENTITIES.map((e) => (
                  <option key={e} value={e} />
                ))}
              </datalist>
            </Field>
            <TimeWindow draft={draft} set={set} testIdPrefix="audit" />
          </>
        )}
      />
      <Notice text={page.error} />
      <ListTable testId="audit" columns={["When", "Who", "Action", "Thing", "Before", "After"]} rows={page.data?.items ?? []}>
        {(a) => (
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
        )}
      </ListTable>
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
