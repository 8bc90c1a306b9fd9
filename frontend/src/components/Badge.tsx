import { textOn, verdictColor } from "../lib/colors";

/** A verdict or label in its colour. */
export function Badge({ label, colors, confirmed = true }: { label: string; colors?: Record<string, string>; confirmed?: boolean }) {
  const bg = verdictColor(label, colors);
  return (
    <span
      className={`badge${confirmed ? "" : " unconfirmed"}`}
      style={{ background: bg, color: textOn(bg) }}
      data-testid="badge"
      data-label={label}
    >
      {label}
      {!confirmed && "?"}
    </span>
  );
}
