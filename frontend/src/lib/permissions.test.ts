import { describe, expect, it } from "vitest";
import { canEditModels, canLabel } from "./permissions";

describe("permissions", () => {
  it("lets admins and developers do anything, nobody logged out anything", () => {
    for (const role of ["admin", "developer"] as const) {
      expect(canLabel({ role, permissions: [] }, "FCAL")).toBe(true);
      expect(canEditModels({ role, permissions: [] }, "FCAL")).toBe(true);
    }
    expect(canLabel(null, "FCAL")).toBe(false);
    expect(canEditModels(undefined, "FCAL")).toBe(false);
  });

  it("scopes experts and labellers to their plot types", () => {
    expect(canLabel({ role: "labeler", permissions: ["FCAL"] }, "FCAL")).toBe(true);
    expect(canLabel({ role: "labeler", permissions: ["FCAL"] }, "BCAL")).toBe(false);
    expect(canEditModels({ role: "labeler", permissions: ["FCAL"] }, "FCAL")).toBe(false);
    expect(canEditModels({ role: "expert", permissions: ["FCAL"] }, "FCAL")).toBe(true);
    expect(canLabel({ role: "viewer", permissions: ["FCAL"] }, "FCAL")).toBe(false);
  });
});
