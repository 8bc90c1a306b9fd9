import type { ReactNode } from "react";

/** A column heading: its text, or its text and a class (`num` right-aligns figures). */
export type Column = string | { title: string; className: string };

/** An admin page's list: the headings, then a row drawn by `children` for each item (the
 * row carries its own key and test ids). */
export function AdminTable<T>({ testId, columns, rows, children }: { testId: string; columns: Column[]; rows: readonly T[]; children: (row: T) => ReactNode }) {
  return (
    <table data-testid={testId}>
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
