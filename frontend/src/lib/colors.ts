// Status colours of verdicts: Hydra's fixed ones first, then the classifications' own.

/** Colours the shift crew knows from the old Run page; they win over the database's. */
export const FIXED_COLORS: Readonly<Record<string, string>> = {
  NoModel: "#000000",
  Good: "#2e9d46",
  Bad: "#d62828",
  NoData: "#8b5a2b",
  Error: "#808080",
  Accepted: "#1e88e5", // a Bad inside an expert's mask of an accepted problem (the masks' blue)
};

const FALLBACK = "#6c7a89";

/** The display colour of a verdict or label. */
export function verdictColor(verdict: string, classColors: Readonly<Record<string, string>> = {}, own?: string): string {
  return FIXED_COLORS[verdict] ?? classColors[verdict] ?? (own || FALLBACK);
}

/** Black or white, whichever reads better on the given background colour. */
export function textOn(background: string): string {
  const hex = background.replace("#", "");
  if (hex.length !== 6) return "#fff";
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
}
