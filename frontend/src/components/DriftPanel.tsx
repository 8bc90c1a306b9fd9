import { Link } from "react-router-dom";
import type { components } from "../api/schema";
import { api, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { useQuery } from "../lib/useQuery";
import { Histogram } from "./Histogram";
import { ListTable, num } from "./ListTable";
import { Notice } from "./Notice";

type Drift = components["schemas"]["DriftOut"];

const RETRAIN_STYLE = { background: "#ffb347", color: "#000" };

function fixed(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined ? "—" : x.toFixed(digits);
}

function percent(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : `${Math.round(x * 100)} %`;
}

function numbers(value: unknown): number[] {
  return Array.isArray(value) ? value.filter((v): v is number => typeof v === "number") : [];
}

function counts(value: unknown): Record<string, number> {
  if (!value || typeof value !== "object") return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, number] => typeof e[1] === "number"));
}

function reasons(d: Drift): string[] {
  const r = d.evidence.reasons;
  return Array.isArray(r) ? r.filter((x): x is string => typeof x === "string") : [];
}

/** The "retraining suggested" mark, its reasons in the tooltip. */
export function RetrainMark({ drift }: { drift: Drift }) {
  if (!drift.retrain_suggested) return null;
  return (
    <span className="badge" style={RETRAIN_STYLE} title={reasons(drift).join("; ")} data-testid="retrain-suggested">
      retraining suggested
    </span>
  );
}

/** The Status page's table: every plot type's drift, retraining suggested first. */
export function DriftTable() {
  const { data, error } = useQuery("drift-all", (signal) => ok(api.GET("/api/drift", { params: { query: { limit: 500 } }, signal })), 60_000);
  const items = data?.items ?? [];
  return (
    <>
      <Notice text={error} />
      <p className="muted">
        The active model's top weights and verdict mix over the keeper's window, against its test split (PSI: below 0.1 stable, above 0.25 a real shift), and how often experts' later labels agree
        with its verdicts.
      </p>
      <ListTable testId="drift" columns={["Plot type", "Model", num("Inferences"), num("Drift (PSI)"), num("top weight / verdicts"), num("Label agreement"), ""]} rows={items}>
        {(d) => (
          <tr key={d.plot_type_id} data-testid="drift-row" data-plot-type={d.plot_type} data-retrain={String(d.retrain_suggested)}>
            <td>
              <Link to={`/library?plot_type=${encodeURIComponent(d.plot_type)}`}>{d.plot_type}</Link>
            </td>
            <td>{d.model_version === null ? "—" : `v${d.model_version}`}</td>
            <td className="num">{d.inferences.toLocaleString()}</td>
            <td className="num" data-testid="drift-score">
              {fixed(d.drift_score)}
            </td>
            <td className="num muted">
              {fixed(d.psi_top_weight)} / {fixed(d.psi_verdicts)}
            </td>
            <td className="num" data-testid="label-agreement">
              {percent(d.label_agreement)} <span className="muted">({d.labelled})</span>
            </td>
            <td>
              <RetrainMark drift={d} />
            </td>
          </tr>
        )}
      </ListTable>
      {data && items.length === 0 && <p className="muted">No drift measured yet (plot types need an active model and the keeper's first pass).</p>}
    </>
  );
}

/** The Library's drift of one plot type: figures, the mark and its evidence. */
export function DriftDetail({ plotType }: { plotType: string }) {
  const { data } = useQuery(`drift-${plotType}`, (signal) => ok(api.GET("/api/drift", { params: { query: { plot_type: plotType } }, signal })), 60_000);
  const d = data?.items[0];
  if (!d) return <p className="muted">No drift measured yet for this plot type.</p>;
  const edges = numbers(d.evidence.bin_edges);
  const live = counts(d.evidence.verdicts_live);
  const test = counts(d.evidence.verdicts_test);
  const labels = [...new Set([...Object.keys(test), ...Object.keys(live)])];
  const share = (c: Record<string, number>, k: string) => {
    const n = Object.values(c).reduce((a, b) => a + b, 0);
    return n ? percent((c[k] ?? 0) / n) : "—";
  };
  return (
    <div className="drift-detail" data-testid="drift-detail" data-retrain={String(d.retrain_suggested)}>
      <p>
        Drift score <strong data-testid="drift-score">{fixed(d.drift_score)}</strong> <span className="muted">(PSI, top weight {fixed(d.psi_top_weight)}, verdicts {fixed(d.psi_verdicts)})</span> · label
        agreement <strong data-testid="label-agreement">{percent(d.label_agreement)}</strong> <span className="muted">of {d.labelled} labelled</span> · {d.inferences.toLocaleString()} inferences in{" "}
        {d.window_hours} h against {d.test_images} test images <span className="muted">({formatTime(d.computed_at)})</span> <RetrainMark drift={d} />
      </p>
      {reasons(d).length > 0 && (
        <ul data-testid="drift-reasons">
          {reasons(d).map((r) => (
            <li key={r}>{r}</li>
          ))}
        </ul>
      )}
      <div className="timings">
        <figure>
          <figcaption className="muted">top weight, live ({d.window_hours} h)</figcaption>
          <Histogram counts={numbers(d.evidence.top_weight_live)} edges={edges} width={260} testId="drift-live" />
        </figure>
        <figure>
          <figcaption className="muted">top weight, test split</figcaption>
          <Histogram counts={numbers(d.evidence.top_weight_test)} edges={edges} width={260} color="#9cc9ff" testId="drift-test" />
        </figure>
      </div>
      <ListTable testId="drift-verdicts" columns={["Verdict", num("live"), num("test split")]} rows={labels}>
        {(k) => (
          <tr key={k}>
            <td>{k}</td>
            <td className="num">{share(live, k)}</td>
            <td className="num">{share(test, k)}</td>
          </tr>
        )}
      </ListTable>
    </div>
  );
}
