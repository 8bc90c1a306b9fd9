import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ListTable, num } from "./ListTable";

const rows = [
  { id: 1, name: "FCAL" },
  { id: 2, name: "BCAL" },
];

function table(className?: string): string {
  return renderToStaticMarkup(
    createElement(ListTable<(typeof rows)[number]>, {
      testId: "things",
      className,
      columns: ["Name", num("Run"), ""],
      rows,
      children: (r) => createElement("tr", { key: r.id, "data-testid": "thing-row" }, createElement("td", null, r.name)),
    }),
  );
}

describe("ListTable", () => {
  it("heads the columns in order, a column of figures right-aligned, an empty one blank", () => {
    expect(table()).toContain('<thead><tr><th>Name</th><th class="num">Run</th><th></th></tr></thead>');
  });
  it("draws one row per item, in order, in the body of the table with its test id", () => {
    const html = table();
    expect(html.startsWith('<table data-testid="things">')).toBe(true);
    expect(html).toContain('<tbody><tr data-testid="thing-row"><td>FCAL</td></tr><tr data-testid="thing-row"><td>BCAL</td></tr></tbody>');
  });
  it("carries the table's class when given one", () => {
    expect(table("models").startsWith('<table class="models" data-testid="things">')).toBe(true);
  });
});
