import { Field } from "./Form";

/** A trailing window in words: hours up to two days, then days. */
export function windowText(hours: number): string {
  return hours < 48 ? `${hours} h` : `${hours / 24} days`;
}

/** The trailing-window picker of a page's toolbar (the Log's and the Status page's). */
export function WindowSelect({ label, hours, windows, onChange, testId }: { label: string; hours: number; windows: readonly number[]; onChange: (hours: number) => void; testId: string }) {
  return (
    <Field label={label}>
      <select value={hours} onChange={(e) => onChange(Number(e.target.value))} data-testid={testId}>
        {windows.map((h) => (
          <option key={h} value={h}>
            {windowText(h)}
          </option>
        ))}
      </select>
    </Field>
  );
}
