import type { PlotType } from "../lib/types";

/** Choose a plot type, grouped by detector. */
export function PlotTypeSelect({
  plotTypes,
  value,
  onChange,
}: {
  plotTypes: PlotType[];
  value: string;
  onChange: (name: string) => void;
}) {
  const detectors = [...new Set(plotTypes.map((p) => p.detector || "other"))].sort();
  return (
    <label className="field">
      Plot type{" "}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid="plot-type-select">
        <option value="">— choose —</option>
        {detectors.map((d) => (
          <optgroup key={d} label={d}>
            {plotTypes
              .filter((p) => (p.detector || "other") === d)
              .map((p) => (
                <option key={p.id} value={p.name}>
                  {p.name}
                </option>
              ))}
          </optgroup>
        ))}
      </select>
    </label>
  );
}
