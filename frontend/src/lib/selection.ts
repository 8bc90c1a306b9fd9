// Painting in the Labeler: click paints one image, shift+click paints the range from the
// last clicked image; Apply sends every painted image at once.

/** The ids between the last clicked index and this one, both included, in grid order. */
export function rangeIds<Id>(ids: readonly Id[], lastIndex: number | null, index: number): Id[] {
  if (index < 0 || index >= ids.length) return [];
  if (lastIndex === null || lastIndex < 0 || lastIndex >= ids.length) return [ids[index]];
  const [from, to] = lastIndex <= index ? [lastIndex, index] : [index, lastIndex];
  return ids.slice(from, to + 1);
}

/** What a click does to the painted labels (a new map; the old one is left alone). */
export function paintClick<Id>(
  painted: ReadonlyMap<Id, string>,
  ids: readonly Id[],
  lastIndex: number | null,
  index: number,
  label: string,
  shift: boolean,
): Map<Id, string> {
  const next = new Map(painted);
  const targets = shift ? rangeIds(ids, lastIndex, index) : rangeIds(ids, null, index);
  // A plain click on an image already painted with this label takes the paint off again.
  if (!shift && targets.length === 1 && painted.get(targets[0]) === label) {
    next.delete(targets[0]);
    return next;
  }
  for (const id of targets) next.set(id, label);
  return next;
}

/** The body of POST /api/labels for the painted images, in grid order. */
export function labelsToApply(ids: readonly number[], painted: ReadonlyMap<number, string>): { plot_id: number; label: string }[] {
  return ids.filter((id) => painted.has(id)).map((id) => ({ plot_id: id, label: painted.get(id) as string }));
}
