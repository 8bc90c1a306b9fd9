import { useState } from "react";
import { Badge } from "../components/Badge";
import { CheckField } from "../components/Form";
import { Notice } from "../components/Notice";
import { Pager } from "../components/Pager";
import { WindowSelect } from "../components/WindowSelect";
import { api, ok } from "../lib/client";
import { formatTime, runChunk } from "../lib/format";
import { useClassifications } from "../lib/useClassColors";
import { useQuery } from "../lib/useQuery";

const WINDOWS = [1, 6, 12, 24, 48, 168];
const LIMIT = 500;

/** The monitoring log: confirmed Bad and unconfirmed of the trailing window, by detector. */
export function LogPage() {
  const [hours, setHours] = useState(24);
  const [onlyTransitions, setOnlyTransitions] = useState(false);
  const [offset, setOffset] = useState(0);
  const { colors } = useClassifications();
  const log = useQuery(
    `log-${hours}-${onlyTransitions}-${offset}`,
    (signal) => ok(api.GET("/api/log", { params: { query: { hours, transitions_only: onlyTransitions, limit: LIMIT, offset } }, signal })),
    30_000,
  );
  const groups = log.data?.groups ?? [];
  const shown = groups.reduce((n, g) => n + g.entries.length, 0);
  return (
    <section className="page log">
      <div className="toolbar">
        <WindowSelect
          label="last"
          hours={hours}
          windows={WINDOWS}
          onChange={(h) => {
            setHours(h);
            setOffset(0);
          }}
          testId="log-hours"
        />
        <CheckField label="transitions only" checked={onlyTransitions} onChange={(on) => { setOnlyTransitions(on); setOffset(0); }} testId="log-transitions-only" />
        <span className="muted" data-testid="log-total">
          {log.data ? `${log.data.total} entries, ${shown} on this page` : ""}
        </span>
      </div>
      <Notice text={log.error} />
      {log.data && groups.length === 0 && <Notice kind="info" text="Nothing Bad or unconfirmed in this window." />}
      {groups.map((group) => (
        <div key={group.detector} className="log-group" data-testid="log-group" data-detector={group.detector}>
          <h2>
            {group.detector || "other"} <span className="muted">({group.entries.length})</span>
          </h2>
          <table>
            <tbody>
              {group.entries.map((e) => (
                <tr key={e.id} className={e.transition ? "transition" : ""} data-testid="log-row" data-transition={String(e.transition)}>
                  <td>{formatTime(e.time)}</td>
                  <td>{e.plot_type}</td>
                  <td>{runChunk(e.run_number, e.chunk)}</td>
                  <td>
                    <Badge label={e.verdict} colors={{ [e.verdict]: e.color, ...colors }} confirmed={e.confirmed} />
                  </td>
                  <td>{e.transition ? <strong>▲ {e.transition_kind || "transition"}</strong> : ""}</td>
                  <td>{e.alarm ? <span className="alarm-tag">ALARM</span> : ""}</td>
                  <td data-testid="log-event">{e.event ? `alarm ${e.event}${e.actor ? ` by ${e.actor}` : ""}` : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
      {log.data && log.data.total > LIMIT && <Pager offset={offset} limit={LIMIT} total={log.data.total} onChange={setOffset} />}
    </section>
  );
}
