import { FilterBar, TimeWindow } from "./FilterBar";
import { Field, Options } from "./Form";

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
  return (
    <FilterBar
      value={value}
      onApply={onApply}
      className="filters"
      testId="editor-filters"
      primary={false}
      submit="Filter"
      submitTestId="filter-apply"
      fields={(draft, set) => (
        <>
          <Field label="runs">
            <input type="number" min={0} value={draft.runMin} onChange={set("runMin")} placeholder="from" data-testid="filter-run-min" />
            –
            <input type="number" min={0} value={draft.runMax} onChange={set("runMax")} placeholder="to" data-testid="filter-run-max" />
          </Field>
          <TimeWindow draft={draft} set={set} testIdPrefix="filter" />
          <Field label="label">
            <select value={draft.label} onChange={set("label")} data-testid="filter-label">
              <option value="">any</option>
              <Options values={labels} />
            </select>
          </Field>
        </>
      )}
    />
  );
}
