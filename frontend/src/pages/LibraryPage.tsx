import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { ConfusionMatrix } from "../components/ConfusionMatrix";
import { DriftDetail } from "../components/DriftPanel";
import { ListTable } from "../components/ListTable";
import { Notice } from "../components/Notice";
import { PlotTypeSelect } from "../components/PlotTypeSelect";
import { ShadowPanel } from "../components/ShadowPanel";
import { ThresholdEditor } from "../components/ThresholdEditor";
import { TrainingPanel } from "../components/TrainingPanel";
import { TrainingSetTable } from "../components/TrainingSetTable";
import { useAuth } from "../lib/auth";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { canEditModels } from "../lib/permissions";
import { useClassifications } from "../lib/useClassColors";
import { usePlotTypes } from "../lib/usePlotTypes";
import { useQuery } from "../lib/useQuery";

/** One model: training set, sampling, enhanced confusion matrix, thresholds, promotion. */
function ModelPanel({ modelId, canEdit, colors, onChanged }: { modelId: number; canEdit: boolean; colors: Record<string, string>; onChanged: () => void }) {
  const [error, setError] = useState("");
  const detail = useQuery(`model-${modelId}`, (signal) => ok(api.GET("/api/models/{model_id}", { params: { path: { model_id: modelId } }, signal })));
  const model = detail.data;
  const promote = async () => {
    setError("");
    try {
      await ok(api.POST("/api/models/{model_id}/promote", { params: { path: { model_id: modelId } } }));
      onChanged();
      detail.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  if (!model) return <Notice text={detail.error} />;
  const set = model.training_set;
  return (
    <div className="model-panel" data-testid="model-panel" data-model-id={model.id}>
      <h2>
        {model.name} v{model.version} {model.active && <span className="active-tag">ACTIVE</span>}
      </h2>
      <dl className="details">
        <dt>Architecture</dt>
        <dd>
          {model.architecture} <span className="muted">({model.input_width}×{model.input_height}×{model.input_channels}, {model.epochs_run} epochs)</span>
        </dd>
        <dt>Status</dt>
        <dd>{model.status}</dd>
        <dt>Training set</dt>
        <dd data-testid="training-set-size">
          {set ? `${set.size.toLocaleString()} images` : "unknown"}, sampling{" "}
          <strong data-testid="sampling-method">{set?.sampling_method ?? model.sampling_method}</strong>
        </dd>
        {set && (
          <>
            <dt>Classes</dt>
            <dd>
              <TrainingSetTable classCounts={set.class_counts} labelOrder={model.label_order} colors={colors} />
              {Object.keys(set.dropped_classes).length > 0 && (
                <span className="muted" data-testid="dropped-classes">
                  {" "}
                  dropped (fewer than 2 images): {Object.keys(set.dropped_classes).join(", ")}
                </span>
              )}
            </dd>
          </>
        )}
        <dt>Trained</dt>
        <dd>
          {formatTime(model.created_at)} {model.trained_by && `by ${model.trained_by}`}
        </dd>
        {model.promoted_at && (
          <>
            <dt>Promoted</dt>
            <dd>
              {formatTime(model.promoted_at)} {model.signed_off_by && `by ${model.signed_off_by}`}
            </dd>
          </>
        )}
      </dl>
      <div className="toolbar">
        {!model.active && (
          <button type="button" className="primary" disabled={!canEdit} onClick={() => void promote()} data-testid="promote-model">
            Promote to active
          </button>
        )}
        <Link to={`/report/${model.id}`} data-testid="open-report">
          Training report (disagreements)
        </Link>
      </div>
      <Notice text={error} />
      {!model.active && model.status !== "failed" && model.status !== "training" && (
        <>
          <h3>Shadow evaluation</h3>
          <ShadowPanel modelId={model.id} canEdit={canEdit} onChanged={onChanged} />
        </>
      )}
      {model.active && (
        <>
          <h3>Drift</h3>
          <DriftDetail plotType={model.plot_type} />
        </>
      )}
      <h3>Enhanced confusion matrix</h3>
      <ConfusionMatrix modelId={model.id} />
      <h3>Thresholds</h3>
      <ThresholdEditor modelId={model.id} editable={canEdit} colors={colors} />
    </div>
  );
}

/** Models per plot type: the active one, its evaluation and thresholds; training. */
export function LibraryPage() {
  const [params, setParams] = useSearchParams();
  const plotTypeName = params.get("plot_type") ?? "";
  const selected = Number(params.get("model") ?? "") || null;
  const { me } = useAuth();
  const { colors } = useClassifications();
  const { plotTypes, error: typesError, reload: reloadPlotTypes } = usePlotTypes();
  const plotType = plotTypes.find((p) => p.name === plotTypeName);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState("");
  const models = useQuery(
    plotTypeName ? `models-${plotTypeName}-${version}` : null,
    (signal) => ok(api.GET("/api/models", { params: { query: { plot_type: plotTypeName } }, signal })),
    15_000,
  );
  const list = models.data?.items ?? [];
  const model = list.find((m) => m.id === selected) ?? list.find((m) => m.active) ?? list[0];
  const canEdit = canEditModels(me, plotTypeName);
  const isAdmin = me?.role === "admin";

  const setParam = (key: string, value: string | null) =>
    setParams((p) => {
      if (value === null) p.delete(key);
      else p.set(key, value);
      if (key === "plot_type") p.delete("model");
      return p;
    });

  const rollback = async () => {
    if (!plotType) return;
    setError("");
    try {
      await ok(api.POST("/api/plot-types/{plot_type_id}/rollback", { params: { path: { plot_type_id: plotType.id } } }));
      setVersion((v) => v + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section className="page library">
      <div className="toolbar">
        <PlotTypeSelect plotTypes={plotTypes} value={plotTypeName} onChange={(n) => setParam("plot_type", n)} />
        {plotType && (
          <button type="button" disabled={!canEdit || !plotType.active_model_id} onClick={() => void rollback()} data-testid="rollback">
            Roll back to the previous model
          </button>
        )}
      </div>
      <Notice text={typesError || models.error || error} />
      {!plotTypeName && <Notice kind="info" text="Choose a plot type." />}
      {plotType && (
        <div className="library-body">
          <div>
            <ListTable className="models" testId="models" columns={["Model", "Architecture", "Status", "Sampling", "Created"]} rows={list}>
              {(m) => (
                <tr
                  key={m.id}
                  className={`${m.active ? "active" : ""}${model?.id === m.id ? " selected" : ""}`}
                  onClick={() => setParam("model", String(m.id))}
                  data-testid="model-row"
                  data-model-id={m.id}
                  data-active={String(m.active)}
                >
                  <td>
                    {m.active && "★ "}v{m.version}
                  </td>
                  <td>{m.architecture}</td>
                  <td>{m.status}</td>
                  <td>{m.sampling_method}</td>
                  <td>{formatTime(m.created_at)}</td>
                </tr>
              )}
            </ListTable>
            {!models.loading && list.length === 0 && <Notice kind="info" text="No models yet for this plot type: start a training run." />}
            <h3>Train</h3>
            <TrainingPanel plotType={plotType} allowed={canEdit} isAdmin={isAdmin} onStarted={() => setVersion((v) => v + 1)} onPlotTypeChanged={reloadPlotTypes} />
          </div>
          {model && <ModelPanel key={`${model.id}-${version}`} modelId={model.id} canEdit={canEdit} colors={colors} onChanged={() => setVersion((v) => v + 1)} />}
        </div>
      )}
    </section>
  );
}
