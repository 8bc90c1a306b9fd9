import { textOn, verdictColor } from "../lib/colors";

/** The plot type's valid labels; keys 1..9 pick one (handled by the page). */
export function Palette({
  labels,
  colors,
  current,
  onPick,
}: {
  labels: string[];
  colors: Record<string, string>;
  current: string;
  onPick: (label: string) => void;
}) {
  return (
    <div className="palette" role="radiogroup" aria-label="Label to paint with" data-testid="palette">
      {labels.map((l, i) => {
        const bg = verdictColor(l, colors);
        return (
          <button
            key={l}
            type="button"
            role="radio"
            aria-checked={l === current}
            className={l === current ? "active" : ""}
            style={{ background: bg, color: textOn(bg) }}
            onClick={() => onPick(l)}
            data-testid={`palette-${l}`}
            data-active={String(l === current)}
          >
            {i < 9 && <kbd>{i + 1}</kbd>} {l}
          </button>
        );
      })}
    </div>
  );
}
