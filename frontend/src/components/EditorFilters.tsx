import { useState, type FormEvent } from "react";

/** What editor mode shows: a run range, a time window and a label. */
export interface EditorFilter {
  runMin: string;
  runMax: string;
  since: string;
  until: string;
  label: string;
}

export const NO_FILTER: EditorFilter = { runMin: "", runMax: "", since: "", until: "", label: "" };

/** The filter form; the filter applies on submit, so typing does not reload the grid. */
export function EditorFilters({ labels, value, onApply }: { labels: string[]; value: EditorFilter; onApply: (f: EditorFilter) => void }) {
  const [draft, setDraft] = useState(value);
  const set = (k: keyof EditorFilter) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [k]: e.target.value }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(draft);
  };
  return (
    <form className="filters" onSubmit={submit} data-testid="editor-filters">
      <label className="field">
        runs
        <input type="number" min={0} value={draft.runMin} onChange={set("runMin")} placeholder="from" data-testid="filter-run-min" />
        –
        <input type="number" min={0} value={draft.runMax} onChange={set("runMax")} placeholder="to" data-testid="filter-run-max" />
      </label>
      <label className="field">
        since
        <input type="datetime-local" value={draft.since} onChange={set("since")} data-testid="filter-since" />
      </label>
      <label className="field">
        until
        <input type="datetime-local" value={draft.until} onChange={set("until")} data-testid="filter-until" />
      </label>
      <label className="field">
        label
        <select value={draft.label} onChange={set("label")} data-testid="filter-label">
          <option value="">any</option>
          {labels.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" data-testid="filter-apply">
        Filter
      </button>
    </form>
  );
}
