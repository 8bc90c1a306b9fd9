// Small formatting helpers shared by the pages.

/** A date-time as the hall reads it: local time, seconds, no year. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, {
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
}

/** Run and chunk as "Run 80464 · chunk 37" (no chunk part when the plot is not chunked). */
export function runChunk(run: number, chunk: number): string {
  return chunk >= 0 ? `Run ${run} · chunk ${chunk}` : `Run ${run}`;
}

/** A fraction 0..1 as a percentage with one decimal. */
export function percent(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

/** Seconds in a readable unit (µs, ms, s). */
export function duration(seconds: number): string {
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1e3).toFixed(1)} ms`;
  return `${seconds.toFixed(2)} s`;
}
