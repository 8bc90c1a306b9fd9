import { verdictColor } from "../lib/colors";
import { runChunk } from "../lib/format";
import type { Plot } from "../lib/types";
import { Badge } from "./Badge";

/** One image in the Labeler's grid; its border shows the paint (or the saved label). */
export function PlotTile({
  plot,
  painted,
  colors,
  onClick,
}: {
  plot: Plot;
  painted: string | undefined;
  colors: Record<string, string>;
  onClick: (shift: boolean) => void;
}) {
  const shown = painted ?? plot.label ?? undefined;
  return (
    <button
      type="button"
      className={`plot-card${painted ? " painted" : ""}`}
      style={shown ? { borderColor: verdictColor(shown, colors) } : undefined}
      onClick={(e) => onClick(e.shiftKey)}
      data-testid="plot-card"
      data-plot-id={plot.id}
      data-label={plot.label ?? ""}
      data-painted={painted ?? ""}
      data-margin={plot.margin ?? ""}
    >
      <img src={plot.image_url} alt={`${plot.plot_type} ${runChunk(plot.run_number, plot.chunk)}`} loading="lazy" draggable={false} />
      <span className="plot-meta">
        {runChunk(plot.run_number, plot.chunk)}
        {plot.margin != null && <span className="muted" title="top weight minus the runner-up's: smaller is less sure"> margin {plot.margin.toFixed(2)}</span>}
        {plot.label && <Badge label={plot.label} colors={colors} />}
        {painted && painted !== plot.label && (
          <>
            {plot.label && " → "}
            <Badge label={painted} colors={colors} />
          </>
        )}
      </span>
    </button>
  );
}
