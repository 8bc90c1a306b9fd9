import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { Badge } from "../components/Badge";
import { CheckField } from "../components/Form";
import { Notice } from "../components/Notice";
import { Pager } from "../components/Pager";
import { api, errorText, ok } from "../lib/client";
import { runChunk } from "../lib/format";
import type { ReportEntry } from "../lib/types";
import { useClassifications } from "../lib/useClassColors";
import { useQuery } from "../lib/useQuery";

const PAGE_SIZE = 100;
type Response = "relabelled" | "model_wrong" | "dismissed";

function ReportRow({ entry, colors, onDone }: { entry: ReportEntry; colors: Record<string, string>; onDone: () => void }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const respond = async (response: Response) => {
    setError("");
    setBusy(true);
    try {
      // Relabelling is a label change like any other (audited, permission-checked); the
      // response only records what was decided about the disagreement.
      if (response === "relabelled") await ok(api.POST("/api/labels", { body: [{ plot_id: entry.plot_id, label: entry.model_label }] }));
      await ok(api.POST("/api/training-reports/{report_id}/response", { params: { path: { report_id: entry.id } }, body: { response } }));
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const last = entry.responses.at(-1);
  return (
    <tr data-testid="report-row" data-report-id={entry.id} data-response={last?.response ?? ""}>
      <td>
        <a href={entry.image_url} target="_blank" rel="noreferrer">
          <img className="thumb" src={entry.image_url} alt={`plot ${entry.plot_id}`} loading="lazy" />
        </a>
      </td>
      <td>{runChunk(entry.run_number, entry.chunk)}</td>
      <td>
        human <Badge label={entry.human_label} colors={colors} />
        {entry.current_label && entry.current_label !== entry.human_label && (
          <>
            {" "}
            now <Badge label={entry.current_label} colors={colors} />
          </>
        )}
      </td>
      <td>
        model <Badge label={entry.model_label} colors={colors} /> {entry.model_weight.toFixed(2)}
      </td>
      <td>
        {last ? (
          <span className="muted">
            {last.response}
            {last.username && ` by ${last.username}`}
          </span>
        ) : (
          <>
            <button type="button" className="primary" disabled={busy} onClick={() => void respond("relabelled")} data-testid="report-relabel">
              Relabel as {entry.model_label}
            </button>
            <button type="button" disabled={busy} onClick={() => void respond("model_wrong")} data-testid="report-keep">
              Keep {entry.human_label}
            </button>
            <button type="button" disabled={busy} onClick={() => void respond("dismissed")} data-testid="report-dismiss">
              Dismiss
            </button>
          </>
        )}
        {error && <span className="error-text"> {error}</span>}
      </td>
    </tr>
  );
}

/** Where the model and the humans disagree, to fix labels in one click. */
export function ReportPage() {
  const modelId = Number(useParams().modelId);
  const { colors } = useClassifications();
  const [version, setVersion] = useState(0);
  const [openOnly, setOpenOnly] = useState(true);
  const [offset, setOffset] = useState(0);
  const report = useQuery(Number.isFinite(modelId) ? `report-${modelId}-${openOnly}-${offset}-${version}` : null, (signal) =>
    ok(
      api.GET("/api/models/{model_id}/report", {
        params: { path: { model_id: modelId }, query: { open_only: openOnly, limit: PAGE_SIZE, offset } },
        signal,
      }),
    ),
  );
  const items = report.data?.items ?? [];
  return (
    <section className="page report">
      <h1>
        Training report of model #{modelId} <Link to="/library">back to the library</Link>
      </h1>
      <div className="toolbar">
        <CheckField label="open only" checked={openOnly} onChange={(on) => { setOpenOnly(on); setOffset(0); }} testId="report-open-only" />
        <span data-testid="report-summary">{report.data ? `${report.data.total ?? items.length} disagreements` : ""}</span>
      </div>
      <Notice text={report.error} />
      {report.data && items.length === 0 && <Notice kind="info" text="No disagreements left." />}
      <table className="report-table" data-testid="report">
        {items.length > 0 && (
          <thead>
            <tr>
              <th>Image</th>
              <th>Run</th>
              <th>Humans say</th>
              <th>Model says</th>
              <th>Decision</th>
            </tr>
          </thead>
        )}
        <tbody>
          {items.map((e) => (
            <ReportRow key={e.id} entry={e} colors={colors} onDone={() => setVersion((v) => v + 1)} />
          ))}
        </tbody>
      </table>
      <Pager offset={offset} limit={PAGE_SIZE} total={report.data?.total ?? items.length} onChange={setOffset} />
    </section>
  );
}
