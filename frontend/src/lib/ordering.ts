// Order of the Run page's cards: what needs the shift crew's attention comes first.

/** The fields of a Run-page card that ordering and alarms look at. */
export interface CardState {
  plot_type: string;
  detector: string;
  verdict: string;
  /** False for the verdicts no model gives (NoModel, Error): the API decides. */
  classified: boolean;
  confirmed: boolean;
  run_number: number;
  chunk: number;
}

/** Rank of a card: 0 confirmed alarm (Bad), 1 unconfirmed, 2 everything else. */
export function cardRank(card: CardState, alarmLabels: ReadonlySet<string>): number {
  if (card.confirmed && alarmLabels.has(card.verdict)) return 0;
  if (isUnconfirmed(card)) return 1;
  return 2;
}

/** True for a classification below its label's threshold (NoModel and Error are neither). */
export function isUnconfirmed(card: Pick<CardState, "classified" | "confirmed">): boolean {
  return card.classified && !card.confirmed;
}

/** True for cards that go into the BAD PLOTS strip (confirmed Bad or unconfirmed). */
export function needsAttention(card: CardState, alarmLabels: ReadonlySet<string>): boolean {
  return cardRank(card, alarmLabels) < 2;
}

/**
 * Cards in display order: confirmed Bad, then unconfirmed, then the rest; within a rank by
 * detector and plot type, so a wall screen's layout stays put between updates.
 */
export function orderCards<T extends CardState>(cards: readonly T[], alarmLabels: ReadonlySet<string>): T[] {
  return [...cards].sort(
    (a, b) =>
      cardRank(a, alarmLabels) - cardRank(b, alarmLabels) ||
      a.detector.localeCompare(b.detector) ||
      a.plot_type.localeCompare(b.plot_type),
  );
}

/**
 * Plot types whose card turned confirmed Bad in `next` and was not confirmed Bad (for the
 * same run and chunk) in `prev`: what the audible alarm sounds for.
 */
export function newConfirmedBad<T extends CardState>(
  prev: ReadonlyMap<string, T>,
  next: Iterable<T>,
  alarmLabels: ReadonlySet<string>,
): string[] {
  const fresh: string[] = [];
  for (const card of next) {
    if (cardRank(card, alarmLabels) !== 0) continue;
    const before = prev.get(card.plot_type);
    const sameImage = before && before.run_number === card.run_number && before.chunk === card.chunk;
    if (!before || cardRank(before, alarmLabels) !== 0 || !sameImage) fresh.push(card.plot_type);
  }
  return fresh;
}

/** Merges changed cards (from the event stream) into the current ones, by plot type. */
export function mergeCards<T extends CardState>(current: ReadonlyMap<string, T>, changed: Iterable<T>): Map<string, T> {
  const merged = new Map(current);
  for (const card of changed) merged.set(card.plot_type, card);
  return merged;
}
