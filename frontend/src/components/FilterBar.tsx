import { useState, type ReactNode } from "react";
import { Field, SubmitForm, type SubmitFormProps } from "./Form";

/** What a filter field reports: its text, or the change event of an input or select. */
type Change = string | { target: { value: string } };

/** A change handler for one filter field, made by the bar for its key. */
export type SetFilter<F> = (key: keyof F) => (change: Change) => void;

/** A bar of text filters that applies on submit, so typing does not reload what it filters:
 * the fields edit a draft, and `onApply` gets the draft when the form is submitted. */
export function FilterBar<F extends { [K in keyof F]: string }>({
  value,
  onApply,
  fields,
  ...form
}: {
  value: F;
  onApply: (filters: F) => void;
  /** The bar's fields, drawn from the draft and its setter. */
  fields: (draft: F, set: SetFilter<F>) => ReactNode;
} & Omit<SubmitFormProps, "onSubmit" | "children">) {
  const [draft, setDraft] = useState(value);
  const set: SetFilter<F> = (key) => (change) => setDraft((d) => ({ ...d, [key]: typeof change === "string" ? change : change.target.value }));
  return (
    <SubmitForm {...form} onSubmit={() => onApply(draft)}>
      {fields(draft, set)}
    </SubmitForm>
  );
}

/** The "since" and "until" fields of a filter bar (local date and time). */
export function TimeWindow({ draft, set, testIdPrefix }: { draft: { since: string; until: string }; set: (key: "since" | "until") => (change: Change) => void; testIdPrefix: string }) {
  return (
    <>
      <Field label="since">
        <input type="datetime-local" value={draft.since} onChange={set("since")} data-testid={`${testIdPrefix}-since`} />
      </Field>
      <Field label="until">
        <input type="datetime-local" value={draft.until} onChange={set("until")} data-testid={`${testIdPrefix}-until`} />
      </Field>
    </>
  );
}
