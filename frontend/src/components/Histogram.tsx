/** A plain SVG bar histogram (no chart library): bars of `counts` over `edges`. */
export function Histogram({
  counts,
  edges,
  width = 320,
  height = 90,
  format = (x: number) => x.toPrecision(2),
  color = "#4ea1ff",
  ticks,
  testId,
}: {
  counts: number[];
  edges?: number[];
  width?: number;
  height?: number;
  format?: (x: number) => string;
  color?: string;
  /** Indices of the edges to label under the axis (default: the first and the last). */
  ticks?: number[];
  testId?: string;
}) {
  const max = Math.max(1, ...counts);
  const bar = counts.length > 0 ? width / counts.length : width;
  const axis = 14;
  return (
    <svg className="histogram" width={width} height={height + axis} role="img" data-testid={testId}>
      {counts.map((c, i) => {
        const h = (c / max) * height;
        return (
          <rect key={i} x={i * bar + 0.5} y={height - h} width={Math.max(bar - 1, 1)} height={h} fill={color}>
            <title>
              {edges && edges.length > i + 1 ? `${format(edges[i])} – ${format(edges[i + 1])}: ${c}` : String(c)}
            </title>
          </rect>
        );
      })}
      <line x1={0} x2={width} y1={height + 0.5} y2={height + 0.5} stroke="#666" />
      {edges &&
        edges.length > 1 &&
        (ticks ?? [0, edges.length - 1])
          .filter((i) => i >= 0 && i < edges.length)
          .map((i) => {
            const x = i * bar;
            const anchor = x < 20 ? "start" : x > width - 20 ? "end" : "middle";
            return (
              <g key={i}>
                <line x1={x} x2={x} y1={height} y2={height + 3} stroke="#666" />
                <text x={x} y={height + axis - 2} textAnchor={anchor} className="axis">
                  {format(edges[i])}
                </text>
              </g>
            );
          })}
    </svg>
  );
}

/** A tiny histogram for a table cell (the enhanced confusion matrix's weight distribution). */
export function Sparkline({ counts, color = "#9cc9ff" }: { counts: number[]; color?: string }) {
  const width = 100;
  const height = 28;
  const max = Math.max(1, ...counts);
  const bar = counts.length > 0 ? width / counts.length : width;
  return (
    <svg className="sparkline" width={width} height={height} aria-hidden="true">
      {counts.map((c, i) => {
        const h = (c / max) * (height - 1);
        return <rect key={i} x={i * bar} y={height - 1 - h} width={Math.max(bar - 0.5, 0.5)} height={h} fill={color} />;
      })}
      <line x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} stroke="#555" />
    </svg>
  );
}
