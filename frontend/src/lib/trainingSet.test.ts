import { describe, expect, it } from "vitest";
import { splitTable } from "./trainingSet";

describe("splitTable", () => {
  it("lays out splits x labels with totals, in the model's label order", () => {
    const t = splitTable(
      { test: { Good: 2, Bad: 1 }, train: { Good: 40, Bad: 40, Glitch: 3 }, validation: { Good: 4 } },
      ["Bad", "Good", "Glitch"],
    );
    expect(t.splits).toEqual(["train", "validation", "test"]);
    expect(t.labels).toEqual(["Bad", "Good", "Glitch"]);
    expect(t.counts.validation).toEqual({ Bad: 0, Good: 4, Glitch: 0 });
    expect(t.totals).toEqual({ Bad: 41, Good: 46, Glitch: 3 });
  });

  it("shows an old flat {label: n} set as one row", () => {
    const t = splitTable({ Good: 5, Bad: 2 });
    expect(t.splits).toEqual(["all"]);
    expect(t.labels).toEqual(["Bad", "Good"]);
    expect(t.counts.all).toEqual({ Bad: 2, Good: 5 });
  });

  it("ignores values that are not counts", () => {
    const t = splitTable({ train: { Good: 3, Bad: "x" } });
    expect(t.counts.train).toEqual({ Good: 3, Bad: 0 });
  });
});
