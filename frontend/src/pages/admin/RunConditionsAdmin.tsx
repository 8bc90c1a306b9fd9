import { useState } from "react";
import { useAdminActions } from "../../components/admin/useAdminActions";
import { CheckField, Field, SubmitForm, TextField } from "../../components/Form";
import { ListTable, num } from "../../components/ListTable";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { useQuery } from "../../lib/useQuery";

function beam(current: number | null | undefined): string {
  return current === null || current === undefined ? "unknown" : `${current} nA`;
}

/** Run conditions: the current ones (live), the recorded rows, adding one by hand and
 * deleting a wrong one (admins). */
export function RunConditionsAdmin({ canDelete }: { canDelete: boolean }) {
  const { version, error, act } = useAdminActions();
  const [run, setRun] = useState("");
  const [current, setCurrent] = useState("");
  const [runType, setRunType] = useState("");
  const [special, setSpecial] = useState(false);
  const latest = useQuery(`rc-latest-${version}`, (signal) => ok(api.GET("/api/run-conditions", { params: { query: { limit: 1 } }, signal })), 5000);
  const live = useQuery(`rc-beam-${version}`, (signal) => ok(api.GET("/api/beam", { signal })), 5000);
  const list = useQuery(`rc-list-${version}`, (signal) => ok(api.GET("/api/run-conditions", { params: { query: { limit: 100 } }, signal })));
  const runNumber = Number(run);
  const valid = run.trim() !== "" && Number.isInteger(runNumber) && runNumber >= 0 && (current.trim() === "" || Number.isFinite(Number(current)));
  const add = async () => {
    const body = { run_number: runNumber, beam_current: current.trim() === "" ? null : Number(current), run_type: runType, special };
    if (await act(() => ok(api.POST("/api/run-conditions", { body })))) {
      setRun("");
      setCurrent("");
      setRunType("");
      setSpecial(false);
    }
  };
  const now = latest.data?.items[0];
  return (
    <div data-testid="run-conditions-admin">
      <h2>Run conditions</h2>
      <section className="live-box" data-testid="rc-live">
        <h3>Live values</h3>
        <p className="muted">
          The beam and run state the keeper uses for alarms (<code>GET /api/beam</code>, refreshed every 5 s): from EPICS when beam PVs are configured, else from the
          latest run conditions below.
        </p>
        {live.data && (
          <dl className="details" data-testid="rc-beam-state" data-source={live.data.source} data-state={live.data.state}>
            <dt>Source</dt>
            <dd>{live.data.source === "epics" ? "EPICS" : live.data.source === "rest" ? "run conditions (REST)" : "none"}</dd>
            <dt>Beam</dt>
            <dd>
              {live.data.state} ({beam(live.data.beam_current)}; on above {live.data.threshold} nA)
            </dd>
            <dt>Run</dt>
            <dd>
              {live.data.run_number ?? "—"} {live.data.run_type}
              {live.data.special ? " (special run)" : ""}
            </dd>
            <dt>Alarms</dt>
            <dd>
              {live.data.alarms ? "raised" : "suppressed"}
              {live.data.reason ? ` — ${live.data.reason}` : ""}
            </dd>
            <dt>Last heard</dt>
            <dd>{live.data.heard_at ? new Date(live.data.heard_at).toLocaleString() : "—"}</dd>
          </dl>
        )}
        <h3>Latest run conditions</h3>
        <p className="muted">
          What <code>GET /api/run-conditions</code> returns as the current run conditions (its latest row): written by the hall's scripts or recorded by hand below.
        </p>
        {now ? (
          <dl className="details" data-testid="rc-current" data-run={String(now.run_number)}>
            <dt>Run</dt>
            <dd>{now.run_number}</dd>
            <dt>Beam current</dt>
            <dd>{beam(now.beam_current)}</dd>
            <dt>Run type</dt>
            <dd>
              {now.run_type || "—"}
              {now.special ? " (special: alarms suppressed)" : ""}
            </dd>
            <dt>Recorded</dt>
            <dd>{new Date(now.recorded_at).toLocaleString()}</dd>
          </dl>
        ) : (
          <p className="muted">No run conditions recorded.</p>
        )}
      </section>
      <SubmitForm onSubmit={() => void add()} submit="Record" submitTestId="rc-add" disabled={!valid}>
        <Field label="run">
          <input type="number" min={0} step={1} value={run} onChange={(e) => setRun(e.target.value)} data-testid="rc-run" />
        </Field>
        <Field label="beam current (nA)">
          <input type="number" step="any" value={current} placeholder="unknown" onChange={(e) => setCurrent(e.target.value)} data-testid="rc-beam" />
        </Field>
        <TextField label="run type" value={runType} maxLength={64} onChange={setRunType} placeholder="production, cosmics…" testId="rc-type" />
        <CheckField label="special run" checked={special} onChange={setSpecial} testId="rc-special" />
      </SubmitForm>
      <Notice text={live.error || latest.error || list.error || error} />
      <ListTable testId="rc-list" columns={[num("Run"), "Beam", "Run type", "Special", "Recorded", ""]} rows={list.data?.items ?? []}>
        {(rc) => (
          <tr key={rc.id} data-testid="rc-row" data-run={String(rc.run_number)} data-id={String(rc.id)}>
            <td className="num">{rc.run_number}</td>
            <td>{beam(rc.beam_current)}</td>
            <td>{rc.run_type}</td>
            <td>{rc.special ? "yes" : ""}</td>
            <td>{new Date(rc.recorded_at).toLocaleString()}</td>
            <td>
              {canDelete && (
                <button type="button" onClick={() => void act(() => ok(api.DELETE("/api/run-conditions/{run_condition_id}", { params: { path: { run_condition_id: rc.id } } })))} data-testid="rc-delete">
                  Delete
                </button>
              )}
            </td>
          </tr>
        )}
      </ListTable>
    </div>
  );
}
