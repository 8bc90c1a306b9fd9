// The plot types (with their valid labels and whether this user may label them).
import { api, ok } from "./client";
import type { PlotType } from "./types";
import { useQuery } from "./useQuery";

export function usePlotTypes(): { plotTypes: PlotType[]; error: string; reload: () => void } {
  const { data, error, reload } = useQuery("plot-types", (signal) => ok(api.GET("/api/plot-types", { params: { query: { limit: 500 } }, signal })));
  return { plotTypes: data?.items ?? [], error, reload };
}
