import { describe, expect, it } from "vitest";
import { mergeCards, newConfirmedBad, orderCards, type CardState } from "./ordering";

const ALARM = new Set(["Bad"]);

function card(plot_type: string, verdict: string, confirmed: boolean, detector = "FCAL", run = 1, chunk = 0): CardState {
  // The API marks the verdicts no model gives; the test spells them as it does.
  const classified = verdict !== "NoModel" && verdict !== "Error";
  return { plot_type, detector, verdict, classified, confirmed, run_number: run, chunk };
}

describe("orderCards", () => {
  it("puts confirmed Bad first, then unconfirmed, then the rest", () => {
    const cards = [
      card("a_good", "Good", true),
      card("b_unconfirmed_good", "Good", false),
      card("c_nomodel", "NoModel", false),
      card("d_bad", "Bad", true),
      card("e_error", "Error", false),
      card("f_unconfirmed_bad", "Bad", false),
    ];
    expect(orderCards(cards, ALARM).map((c) => c.plot_type)).toEqual([
      "d_bad",
      "b_unconfirmed_good",
      "f_unconfirmed_bad",
      "a_good",
      "c_nomodel",
      "e_error",
    ]);
  });

  it("keeps a stable detector, plot-type order inside a rank and leaves the input alone", () => {
    const cards = [card("z", "Good", true, "BCAL"), card("y", "Good", true, "FCAL"), card("x", "Good", true, "BCAL")];
    expect(orderCards(cards, ALARM).map((c) => c.plot_type)).toEqual(["x", "z", "y"]);
    expect(cards.map((c) => c.plot_type)).toEqual(["z", "y", "x"]);
  });

  it("treats any alarm label as Bad", () => {
    const cards = [card("a", "Good", true), card("b", "HotChannel", true)];
    expect(orderCards(cards, new Set(["HotChannel"]))[0].plot_type).toBe("b");
  });
});

describe("newConfirmedBad", () => {
  it("reports a card that turned confirmed Bad, once", () => {
    const before = new Map([["a", card("a", "Good", true)], ["b", card("b", "Bad", true)]]);
    const update = [card("a", "Bad", true), card("b", "Bad", true)];
    expect(newConfirmedBad(before, update, ALARM)).toEqual(["a"]);
    const after = mergeCards(before, update);
    expect(newConfirmedBad(after, update, ALARM)).toEqual([]);
  });

  it("reports a new image of a plot that stays Bad, but not an unconfirmed Bad", () => {
    const before = new Map([["a", card("a", "Bad", true, "FCAL", 1, 0)]]);
    expect(newConfirmedBad(before, [card("a", "Bad", true, "FCAL", 1, 1)], ALARM)).toEqual(["a"]);
    expect(newConfirmedBad(new Map(), [card("c", "Bad", false)], ALARM)).toEqual([]);
  });
});
