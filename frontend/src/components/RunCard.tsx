import type { AlarmInfo } from "../lib/alarm";
import { textOn, verdictColor } from "../lib/colors";
import { formatTime, percent, runChunk } from "../lib/format";
import { isUnconfirmed } from "../lib/ordering";
import { MaskOverlay, type Mask } from "./MaskEditor";
import type { RuntimeItem } from "../lib/types";

/** File name for "save": plot type, run and chunk, so saved images sort sensibly. */
function saveName(card: RuntimeItem): string {
  return `${card.plot_type}_${card.run_number}${card.chunk >= 0 ? `_${card.chunk}` : ""}.png`;
}

/**
 * One security-camera tile: the latest image of a plot type with its verdict, and its alarm
 * (raised: blinking ALARM and, for the crew, an acknowledge button; acknowledged: a quiet
 * ACK tag naming who acknowledged it, until the plot recovers).
 */
export function RunCard({
  card,
  colors,
  heatmapOpacity,
  onHide,
  onDetails,
  alarm,
  onAcknowledge,
  masks,
}: {
  card: RuntimeItem;
  colors: Record<string, string>;
  heatmapOpacity: number;
  onHide: () => void;
  onDetails: () => void;
  alarm?: AlarmInfo;
  onAcknowledge?: () => void;
  masks?: Mask[];
}) {
  const color = verdictColor(card.verdict, colors, card.color);
  const unconfirmed = isUnconfirmed(card);
  const alarmState = alarm?.state ?? "clear";
  return (
    <article
      className={`run-card${card.stale ? " stale" : ""}${unconfirmed ? " unconfirmed" : ""}${alarmState !== "clear" ? ` alarm-${alarmState}` : ""}`}
      style={{ borderColor: color }}
      data-testid="run-card"
      data-plot-type={card.plot_type}
      data-verdict={card.verdict}
      data-confirmed={String(card.confirmed)}
      data-stale={String(card.stale)}
      data-alarm={alarmState}
    >
      <header>
        <span className="plot-name" title={card.plot_type}>
          {card.plot_type}
        </span>
        {alarmState === "raised" && (
          <span className="alarm-tag alarm-raised-tag" data-testid="alarm-raised" title={`alarm raised ${formatTime(alarm?.raised_at ?? null)}`}>
            ALARM
          </span>
        )}
        {alarmState === "acknowledged" && (
          <span className="ack-tag" data-testid="alarm-acknowledged" title={`acknowledged ${formatTime(alarm?.acknowledged_at ?? null)}`}>
            ACK {alarm?.acknowledged_by}
          </span>
        )}
        <span className="badge" style={{ background: color, color: textOn(color) }} data-testid="run-card-verdict">
          {card.verdict}
          {unconfirmed && "?"}
        </span>
      </header>
      <div className="frame">
        {card.image_url ? (
          <img src={card.image_url} alt={`${card.plot_type}, ${runChunk(card.run_number, card.chunk)}`} loading="lazy" />
        ) : (
          <div className="no-image">no image</div>
        )}
        {card.heatmap_url && heatmapOpacity > 0 && (
          <img className="heatmap" src={card.heatmap_url} alt="" style={{ opacity: heatmapOpacity }} data-testid="heatmap" />
        )}
        {masks && <MaskOverlay masks={masks} imageUrl={card.image_url} />}
        {card.stale && (
          <span className="stale-tag" data-testid="stale-tag">
            STALE
          </span>
        )}
      </div>
      <footer>
        <span className="muted card-meta">
          {runChunk(card.run_number, card.chunk)} · {card.classified && `${percent(card.confidence)} · `}
          {formatTime(card.time)}
        </span>
        <span className="actions">
          <button type="button" onClick={onHide} title="Hide this plot" data-testid="card-hide">
            hide
          </button>
          {card.image_url && (
            <a href={card.image_url} download={saveName(card)} title="Save the image" data-testid="card-save">
              save
            </a>
          )}
          <button type="button" onClick={onDetails} title="Weights, thresholds, model" data-testid="card-details">
            details
          </button>
          {alarmState === "raised" && onAcknowledge && (
            <button type="button" className="ack-button" onClick={onAcknowledge} title="Silence this alarm until the plot recovers" data-testid="card-acknowledge">
              acknowledge
            </button>
          )}
        </span>
      </footer>
    </article>
  );
}
