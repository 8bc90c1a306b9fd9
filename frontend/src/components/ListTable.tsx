import type { ReactNode } from "react";

/** A column heading: its text, or its text and a class (`num` right-aligns figures). */
export type Column = string | { title: string; className: string };

/** The heading of a column of figures (right-aligned). */
export function num(title: string): Column {
  return { title, className: "num" };
}

/** A list as a table: the headings, then a row drawn by `children` for each item (the row
 * carries its own key, class and test ids). */
export function ListTable<T>({
  testId,
  className,
  columns,
  rows,
  children,
}: {
  testId?: string;
  className?: string;
  columns: Column[];
  rows: readonly T[];
  children: (row: T) => ReactNode;
}) {
  return (
    <table className={className} data-testid={testId}>
      <thead>
        <tr>
          {columns.map((c, i) =>
            typeof c === "string" ? (
              <th key={i}>{c}</th>
            ) : (
              <th key={i} className={c.className}>
                {c.title}
              </th>
            ),
          )}
        </tr>
      </thead>
      <tbody>{rows.map((row) => children(row))}</tbody>
    </table>
  );
}
