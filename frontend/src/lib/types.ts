// Domain types, taken from the generated schema by path, so a change in the API's response
// shape shows up here as a type error rather than at run time.
import type { paths } from "../api/schema";

type JsonOk<Op> = Op extends { responses: infer R }
  ? R extends { 200: { content: { "application/json": infer T } } }
    ? T
    : R extends { 201: { content: { "application/json": infer T } } }
      ? T
      : never
  : never;

type Get<P extends keyof paths> = paths[P] extends { get: infer Op } ? JsonOk<Op> : never;
type Post<P extends keyof paths> = paths[P] extends { post: infer Op } ? JsonOk<Op> : never;
type Item<L> = L extends { items: (infer T)[] } ? T : never;

export type RuntimeItem = Item<Get<"/api/runtime">>;
export type Plot = Item<Get<"/api/plots">>;
export type Inference = Item<Get<"/api/inferences">>;
export type LabelCounts = Get<"/api/labels/counts">;
export type LeaderboardEntry = Item<Get<"/api/labels/leaderboard">>;
export type PlotType = Item<Get<"/api/plot-types">>;
export type Classification = Item<Get<"/api/classifications">>;
export type Model = Item<Get<"/api/models">>;
export type ModelDetail = Get<"/api/models/{model_id}">;
export type Confusion = Get<"/api/models/{model_id}/confusion">;
export type Threshold = Item<Get<"/api/models/{model_id}/thresholds">>;
export type TrainingRun = Post<"/api/training-runs">;
export type ReportEntry = Item<Get<"/api/models/{model_id}/report">>;
export type LogGroup = Get<"/api/log">["groups"][number];
export type LogEntry = LogGroup["entries"][number];
export type Status = Get<"/api/status">;
export type NewsItem = Item<Get<"/api/news">>;
export type Summary = Get<"/api/summary">;
export type RunCondition = Item<Get<"/api/run-conditions">>;
export type Me = Get<"/api/auth/me">;
