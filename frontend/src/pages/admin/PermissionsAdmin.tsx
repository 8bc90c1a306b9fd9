import { useState } from "react";
import type { components } from "../../api/schema";
import { useAdminActions } from "../../components/admin/useAdminActions";
import { TextField } from "../../components/Form";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

type User = components["schemas"]["UserOut"];

// Only these roles label per plot type (admins and developers label everything; experts
// also change the models of the plot types they are granted).
const SCOPED = new Set(["expert", "labeler"]);

/** Who may label which plot type: a grid of plot types (rows) by labellers and experts
 * (columns); a tick grants or revokes one plot type at once. */
export function PermissionsAdmin() {
  const { version, error, act } = useAdminActions();
  const [filter, setFilter] = useState("");
  const [busy, setBusy] = useState("");
  const users = useQuery(`perm-users-${version}`, (signal) => ok(api.GET("/api/users", { params: { query: { limit: 500 } }, signal })));
  const plotTypes = useQuery(`perm-plot-types-${filter}`, (signal) =>
    ok(api.GET("/api/plot-types", { params: { query: { limit: 500, ...(filter ? { name: filter } : {}) } }, signal })),
  );
  const people = (users.data?.items ?? []).filter((u) => SCOPED.has(u.role) && u.active);
  const rows = plotTypes.data?.items ?? [];
  const toggle = async (user: User, plotTypeId: number, granted: boolean) => {
    const key = `${user.id}:${plotTypeId}`;
    const path = { user_id: user.id, plot_type_id: plotTypeId };
    setBusy(key);
    await act(() =>
      granted ? ok(api.DELETE("/api/users/{user_id}/permissions/{plot_type_id}", { params: { path } })) : ok(api.PUT("/api/users/{user_id}/permissions/{plot_type_id}", { params: { path } })),
    );
    setBusy("");
  };
  return (
    <div data-testid="permissions-admin">
      <h2>Permissions</h2>
      <p className="muted">
        A tick lets a labeller label the plot type (an expert also edits its models and thresholds). Admins and developers may label every plot type.
      </p>
      <Notice text={users.error || plotTypes.error || error} />
      <div className="toolbar">
        <TextField label="plot type contains" value={filter} maxLength={128} onChange={setFilter} testId="perm-filter" />
        <span className="muted">
          {rows.length} plot types{plotTypes.data?.total && plotTypes.data.total > rows.length ? ` of ${plotTypes.data.total} (narrow the filter)` : ""}, {people.length} labellers
          and experts
        </span>
      </div>
      {people.length === 0 ? (
        <Notice kind="info" text="No active labeller or expert yet: create one on the Users tab." />
      ) : (
        <div className="perm-grid">
          <table data-testid="perm-grid">
            <thead>
              <tr>
                <th>Plot type</th>
                {people.map((u) => (
                  <th key={u.id} className="perm-user" title={`${u.username} (${u.role})`} data-testid="perm-user">
                    <span>{u.username}</span>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((pt) => (
                <tr key={pt.id}>
                  <td>
                    {pt.name} <span className="muted">{pt.detector}</span>
                  </td>
                  {people.map((u) => {
                    const granted = u.permissions.includes(pt.name);
                    return (
                      <td key={u.id} className="cell">
                        <input
                          type="checkbox"
                          checked={granted}
                          disabled={busy === `${u.id}:${pt.id}`}
                          onChange={() => void toggle(u, pt.id, granted)}
                          aria-label={`${u.username} may label ${pt.name}`}
                          data-testid="perm-cell"
                          data-user={u.username}
                          data-plot-type={pt.name}
                        />
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
