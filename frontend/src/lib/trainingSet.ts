// The counts of a training set, as a table split x label.
//
// training_sets.class_counts is {"train": {label: n}, "validation": {...}, "test": {...}};
// sets recorded before the split existed hold {label: n}, shown as one "all" row.

export interface SplitTable {
  splits: string[];
  labels: string[];
  /** counts[split][label], 0 where none. */
  counts: Record<string, Record<string, number>>;
  /** Per label, over every split. */
  totals: Record<string, number>;
}

const ORDER = ["train", "validation", "test"];

function isCounts(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asNumber(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** The class counts of a training set as a split x label table. */
export function splitTable(classCounts: Record<string, unknown>, labelOrder: string[] = []): SplitTable {
  const nested = Object.values(classCounts).some(isCounts);
  const bySplit: Record<string, Record<string, unknown>> = nested
    ? Object.fromEntries(Object.entries(classCounts).filter((e): e is [string, Record<string, unknown>] => isCounts(e[1])))
    : { all: classCounts };
  const splits = Object.keys(bySplit).sort((a, b) => {
    const ia = ORDER.indexOf(a);
    const ib = ORDER.indexOf(b);
    return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib) || a.localeCompare(b);
  });
  const seen = new Set(splits.flatMap((s) => Object.keys(bySplit[s])));
  const labels = [...labelOrder.filter((l) => seen.has(l)), ...[...seen].filter((l) => !labelOrder.includes(l)).sort()];
  const counts: Record<string, Record<string, number>> = {};
  const totals: Record<string, number> = Object.fromEntries(labels.map((l) => [l, 0]));
  for (const split of splits) {
    counts[split] = Object.fromEntries(labels.map((l) => [l, asNumber(bySplit[split][l])]));
    for (const l of labels) totals[l] += counts[split][l];
  }
  return { splits, labels, counts, totals };
}
