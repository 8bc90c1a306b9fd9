// The classifications (labels) with their colours and which raise alarms, loaded once.
import { useMemo } from "react";
import { api, ok } from "./client";
import type { Classification } from "./types";
import { useQuery } from "./useQuery";

export interface ClassInfo {
  list: Classification[];
  colors: Record<string, string>;
  alarmLabels: Set<string>;
}

export function useClassifications(): ClassInfo {
  const { data } = useQuery("classifications", (signal) => ok(api.GET("/api/classifications", { signal })));
  return useMemo(() => {
    const list = data?.items ?? [];
    const alarm = new Set(list.filter((c) => c.alarm).map((c) => c.name));
    // Bad is the alarm class even before the classifications have loaded.
    if (alarm.size === 0) alarm.add("Bad");
    return { list, colors: Object.fromEntries(list.map((c) => [c.name, c.color])), alarmLabels: alarm };
  }, [data]);
}
