import { Link } from "react-router-dom";
import { api, ok } from "../lib/client";
import { formatTime, runChunk } from "../lib/format";
import type { RuntimeItem } from "../lib/types";
import { useQuery } from "../lib/useQuery";
import { Badge } from "./Badge";
import { ListTable } from "./ListTable";
import { MaskEditor } from "./MaskEditor";

/** Everything Hydra knows about a card's verdict: weights, thresholds, model, run, time. */
export function CardDetails({
  card,
  colors,
  onClose,
  onMasksSaved,
}: {
  card: RuntimeItem;
  colors: Record<string, string>;
  onClose: () => void;
  onMasksSaved?: () => void; // given when the user may set the plot type's masks
}) {
  const modelId = card.model_id;
  // The card carries the verdict; every weight and the thresholds used are in its inference.
  const latest = useQuery(`inference-${card.plot_type}-${card.order_id}`, (signal) =>
    ok(api.GET("/api/inferences", { params: { query: { plot_type: card.plot_type, limit: 1 } }, signal })),
  );
  const inference = latest.data?.items[0];
  const weights: Record<string, number> = inference?.weights ?? {};
  const used: Record<string, number> = inference?.thresholds ?? {};
  const labels = [...new Set([...Object.keys(weights), ...Object.keys(used)])].sort((a, b) => (weights[b] ?? 0) - (weights[a] ?? 0));
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-label={`Details of ${card.plot_type}`} onClick={(e) => e.stopPropagation()} data-testid="card-details-panel">
        <header>
          <h2>{card.plot_type}</h2>
          <button type="button" onClick={onClose} data-testid="close-details">
            ×
          </button>
        </header>
        <p>
          <Badge label={card.verdict} colors={colors} confirmed={card.confirmed} /> {card.confirmed ? "confirmed" : "unconfirmed"}
          {card.stale && <strong className="stale-text"> · stale</strong>}
        </p>
        <dl className="details">
          <dt>Detector</dt>
          <dd>{card.detector || "—"}</dd>
          <dt>Run</dt>
          <dd>{runChunk(card.run_number, card.chunk)}</dd>
          <dt>Time</dt>
          <dd>{formatTime(card.time)}</dd>
          <dt>Model</dt>
          <dd>{modelId === null ? "none (NoModel)" : <Link to={`/library?plot_type=${encodeURIComponent(card.plot_type)}&model=${modelId}`}>#{modelId}</Link>}</dd>
        </dl>
        {inference && inference.order_id !== card.order_id && <p className="muted">A newer image has arrived; these are its weights.</p>}
        {inference?.error && <p className="error-text">{inference.error}</p>}
        {labels.length > 0 && (
          <ListTable className="weights" testId="details-weights" columns={["Label", "Weight", "Threshold"]} rows={labels}>
            {(l) => {
              const w = weights[l];
              const t = used[l];
              return (
                <tr key={l} className={w !== undefined && t !== undefined && w >= t ? "over" : ""}>
                  <td>
                    <Badge label={l} colors={colors} />
                  </td>
                  <td>{w === undefined ? "—" : w.toFixed(3)}</td>
                  <td>{t === undefined ? "—" : t.toFixed(2)}</td>
                </tr>
              );
            }}
          </ListTable>
        )}
        {card.image_url && (
          <p>
            <a href={card.image_url} target="_blank" rel="noreferrer">
              open image
            </a>
            {card.heatmap_url && (
              <>
                {" · "}
                <a href={card.heatmap_url} target="_blank" rel="noreferrer">
                  open heat map
                </a>
              </>
            )}
          </p>
        )}
        {onMasksSaved && <MaskEditor plotTypeId={card.plot_type_id} imageUrl={card.image_url} onSaved={onMasksSaved} />}
      </div>
    </div>
  );
}
