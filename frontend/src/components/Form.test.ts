import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { FilterBar, TimeWindow } from "./FilterBar";
import { CheckField, Field, Options, SubmitForm, TextField } from "./Form";

describe("SubmitForm", () => {
  it("puts the fields first, then the primary submit button, then the hint", () => {
    const html = renderToStaticMarkup(
      createElement(SubmitForm, {
        onSubmit: () => undefined,
        submit: "Post",
        submitTestId: "post",
        disabled: true,
        testId: "new",
        after: createElement("span", null, "why"),
        children: createElement(Field, { label: "title", children: createElement("input", { "data-testid": "title" }) }),
      }),
    );
    expect(html).toBe(
      '<form class="toolbar" data-testid="new"><label class="field">title<input data-testid="title"/></label>' +
        '<button type="submit" class="primary" disabled="" data-testid="post">Post</button><span>why</span></form>',
    );
  });
  it("draws a plain, enabled button when told it is not the primary action", () => {
    const html = renderToStaticMarkup(createElement(SubmitForm, { onSubmit: () => undefined, submit: "Filter", submitTestId: "apply", primary: false, className: "filters", children: null }));
    expect(html).toBe('<form class="filters"><button type="submit" data-testid="apply">Filter</button></form>');
  });
});

describe("TextField and CheckField", () => {
  it("label a text input before it, with its limits and test id", () => {
    const html = renderToStaticMarkup(createElement(TextField, { label: "title", value: "Quench", maxLength: 255, placeholder: "what", onChange: () => undefined, testId: "news-title" }));
    expect(html).toBe('<label class="field">title<input type="text" maxLength="255" placeholder="what" data-testid="news-title" value="Quench"/></label>');
  });
  it("label a checkbox after it, ticked and disabled as told", () => {
    const html = renderToStaticMarkup(createElement(CheckField, { label: "special run", checked: true, disabled: true, onChange: () => undefined, testId: "rc-special" }));
    expect(html).toBe('<label class="field"><input type="checkbox" disabled="" data-testid="rc-special" checked=""/>special run</label>');
  });
});

describe("Options", () => {
  it("lists each value as its own text, in order", () => {
    const html = renderToStaticMarkup(createElement("select", null, createElement(Options, { values: ["info", "warning"] })));
    expect(html).toBe('<select><option value="info">info</option><option value="warning">warning</option></select>');
  });
});

describe("FilterBar", () => {
  it("shows the value it starts from in its fields, the time window under the given test ids", () => {
    const html = renderToStaticMarkup(
      createElement(FilterBar<{ user: string; since: string; until: string }>, {
        value: { user: "mstaib", since: "2026-01-02T03:04", until: "" },
        onApply: () => undefined,
        submit: "Show",
        submitTestId: "show",
        fields: (draft, set) => [
          createElement("input", { key: "user", value: draft.user, onChange: set("user"), "data-testid": "user" }),
          createElement(TimeWindow, { key: "window", draft, set, testIdPrefix: "audit" }),
        ],
      }),
    );
    // React writes an input's value last.
    expect(html).toContain('<input data-testid="user" value="mstaib"/>');
    expect(html).toContain('<label class="field">since<input type="datetime-local" data-testid="audit-since" value="2026-01-02T03:04"/></label>');
    expect(html).toContain('<label class="field">until<input type="datetime-local" data-testid="audit-until" value=""/></label>');
  });
});
