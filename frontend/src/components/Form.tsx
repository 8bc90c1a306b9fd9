import type { ReactNode } from "react";

/** A labelled control in a toolbar: the label's text, then the control(s). */
export function Field({ label, children }: { label: ReactNode; children: ReactNode }) {
  return (
    <label className="field">
      {label}
      {children}
    </label>
  );
}

/** A labelled one-line text input; `onChange` gets the text. */
export function TextField({
  label,
  value,
  onChange,
  testId,
  maxLength,
  placeholder,
}: {
  label: ReactNode;
  value: string;
  onChange: (text: string) => void;
  testId: string;
  maxLength?: number;
  placeholder?: string;
}) {
  return (
    <Field label={label}>
      <input type="text" value={value} maxLength={maxLength} placeholder={placeholder} onChange={(e) => onChange(e.target.value)} data-testid={testId} />
    </Field>
  );
}

/** A checkbox with its label after it; `onChange` gets whether it is ticked. */
export function CheckField({ label, checked, onChange, testId, disabled }: { label: ReactNode; checked: boolean; onChange: (checked: boolean) => void; testId: string; disabled?: boolean }) {
  return (
    <label className="field">
      <input type="checkbox" checked={checked} disabled={disabled} onChange={(e) => onChange(e.target.checked)} data-testid={testId} />
      {label}
    </label>
  );
}

/** The options of a select, each value its own text. */
export function Options({ values }: { values: readonly string[] }) {
  return (
    <>
      {values.map((v) => (
        <option key={v} value={v}>
          {v}
        </option>
      ))}
    </>
  );
}

export interface SubmitFormProps {
  /** Called on submit (Enter in a field, or the button); the page never reloads. */
  onSubmit: () => void;
  /** The submit button's text and test id. */
  submit: string;
  submitTestId: string;
  disabled?: boolean;
  /** A toolbar's primary action unless told otherwise. */
  primary?: boolean;
  className?: string;
  testId?: string;
  /** Shown after the button (a hint on why it is disabled). */
  after?: ReactNode;
  children: ReactNode;
}

/** A one-line form of fields and a submit button: the admin pages' "new item" rows and the
 * filter bars. Submitting by Enter or by the button goes through one handler. */
export function SubmitForm({ onSubmit, submit, submitTestId, disabled = false, primary = true, className = "toolbar", testId, after, children }: SubmitFormProps) {
  return (
    <form
      className={className}
      data-testid={testId}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      {children}
      <button type="submit" className={primary ? "primary" : undefined} disabled={disabled} data-testid={submitTestId}>
        {submit}
      </button>
      {after}
    </form>
  );
}
