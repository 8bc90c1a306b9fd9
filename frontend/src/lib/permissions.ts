// Who may do what, mirroring the API's rules (the API enforces them; the page only hides or
// disables what would be refused).
import type { Me } from "./types";

type User = Pick<Me, "role" | "permissions"> | null | undefined;

const ANY_PLOT_TYPE = new Set(["admin", "developer"]);
const LABEL_SCOPED = new Set(["expert", "labeler"]);
const MODEL_SCOPED = new Set(["expert"]);

/** May this user label images of this plot type? */
export function canLabel(user: User, plotType: string): boolean {
  if (!user) return false;
  return ANY_PLOT_TYPE.has(user.role) || (LABEL_SCOPED.has(user.role) && user.permissions.includes(plotType));
}

/** May this user set this plot type's masks of accepted problems (an admin, or its expert)? */
export function canEditMasks(user: User, plotType: string): boolean {
  if (!user) return false;
  return user.role === "admin" || (user.role === "expert" && user.permissions.includes(plotType));
}

/** May this user change this plot type's models: thresholds, promotion, rollback, training? */
export function canEditModels(user: User, plotType: string): boolean {
  if (!user) return false;
  return ANY_PLOT_TYPE.has(user.role) || (MODEL_SCOPED.has(user.role) && user.permissions.includes(plotType));
}
