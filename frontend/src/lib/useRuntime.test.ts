import { describe, expect, it } from "vitest";
import { parseRuntimeEvent } from "./useRuntime";

describe("parseRuntimeEvent", () => {
  const card = { plot_type: "FCAL_occupancy", verdict: "Bad" };

  it("reads the API's {full, items} events", () => {
    expect(parseRuntimeEvent(JSON.stringify({ full: true, items: [card, card] }))).toMatchObject({ full: true, items: [card, card] });
    expect(parseRuntimeEvent(JSON.stringify({ full: false, items: [card] }))).toMatchObject({ full: false, items: [card] });
  });

  it("takes a bare list or one card as changes", () => {
    expect(parseRuntimeEvent(JSON.stringify([card]))).toMatchObject({ full: false, items: [card] });
    expect(parseRuntimeEvent(JSON.stringify(card)).items[0].plot_type).toBe("FCAL_occupancy");
  });

  it("drops what is not a card", () => {
    expect(parseRuntimeEvent(JSON.stringify({ ping: 1 })).items).toEqual([]);
    expect(parseRuntimeEvent("null").items).toEqual([]);
  });
});
