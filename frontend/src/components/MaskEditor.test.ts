import { describe, expect, it } from "vitest";
import { canEditMasks } from "../lib/permissions";
import { containedBox } from "./MaskEditor";

describe("containedBox", () => {
  it("fills the 4:3 frame with a 4:3 image", () => {
    expect(containedBox(4 / 3)).toEqual({ left: 0, top: 0, width: 100, height: 100 });
  });
  it("letterboxes a wide image top and bottom", () => {
    const box = containedBox(8 / 3); // twice as wide as the frame: half its height
    expect(box.width).toBe(100);
    expect(box.height).toBeCloseTo(50);
    expect(box.top).toBeCloseTo(25);
  });
  it("pillarboxes a tall image left and right", () => {
    const box = containedBox(2 / 3); // half as wide as the frame
    expect(box.height).toBe(100);
    expect(box.width).toBeCloseTo(50);
    expect(box.left).toBeCloseTo(25);
  });
  it("fills the frame while the image size is unknown", () => {
    expect(containedBox(0)).toEqual({ left: 0, top: 0, width: 100, height: 100 });
  });
});

describe("canEditMasks", () => {
  it("lets an admin, or an expert of the plot type, set masks", () => {
    expect(canEditMasks({ role: "admin", permissions: [] }, "FCAL")).toBe(true);
    expect(canEditMasks({ role: "expert", permissions: ["FCAL"] }, "FCAL")).toBe(true);
    expect(canEditMasks({ role: "expert", permissions: ["BCAL"] }, "FCAL")).toBe(false);
    expect(canEditMasks({ role: "developer", permissions: [] }, "FCAL")).toBe(false);
    expect(canEditMasks({ role: "labeler", permissions: ["FCAL"] }, "FCAL")).toBe(false);
    expect(canEditMasks(null, "FCAL")).toBe(false);
  });
});
