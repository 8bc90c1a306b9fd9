import { describe, expect, it } from "vitest";
import { labelsToApply, paintClick, rangeIds } from "./selection";

const IDS = [10, 11, 12, 13, 14, 15];

describe("rangeIds", () => {
  it("takes the range between the last click and this one, either direction", () => {
    expect(rangeIds(IDS, 1, 4)).toEqual([11, 12, 13, 14]);
    expect(rangeIds(IDS, 4, 1)).toEqual([11, 12, 13, 14]);
    expect(rangeIds(IDS, 2, 2)).toEqual([12]);
  });

  it("falls back to the clicked one without a valid last click", () => {
    expect(rangeIds(IDS, null, 3)).toEqual([13]);
    expect(rangeIds(IDS, 99, 3)).toEqual([13]);
    expect(rangeIds(IDS, 0, 42)).toEqual([]);
  });
});

describe("paintClick", () => {
  it("paints one image on click and a range on shift+click", () => {
    let painted = paintClick(new Map<number, string>(), IDS, null, 1, "Good", false);
    expect([...painted]).toEqual([[11, "Good"]]);
    painted = paintClick(painted, IDS, 1, 4, "Bad", true);
    expect(Object.fromEntries(painted)).toEqual({ 11: "Bad", 12: "Bad", 13: "Bad", 14: "Bad" });
  });

  it("takes the paint off on a second plain click with the same label, not the old map", () => {
    const first = paintClick(new Map<number, string>(), IDS, null, 0, "Good", false);
    const second = paintClick(first, IDS, 0, 0, "Good", false);
    expect(second.size).toBe(0);
    expect(first.size).toBe(1);
    expect(paintClick(first, IDS, 0, 0, "Bad", false).get(10)).toBe("Bad");
  });

  it("sends painted images in grid order", () => {
    const painted = new Map([[14, "Bad"], [10, "Good"]]);
    expect(labelsToApply(IDS, painted)).toEqual([
      { plot_id: 10, label: "Good" },
      { plot_id: 14, label: "Bad" },
    ]);
  });
});
