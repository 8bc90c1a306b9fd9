import { useState } from "react";
import { Link } from "react-router-dom";
import type { components } from "../../api/schema";
import { useAdminActions, type AdminActions } from "../../components/admin/useAdminActions";
import { CheckField, Options, TextField } from "../../components/Form";
import { ListTable, num } from "../../components/ListTable";
import { Notice } from "../../components/Notice";
import { api, ok } from "../../lib/client";
import { textOn } from "../../lib/colors";
import type { Classification, PlotType } from "../../lib/types";
import { useQuery } from "../../lib/useQuery";

type Update = components["schemas"]["PlotTypeUpdate"];
type Options = components["schemas"]["TrainingOptions"];

/** One plot type: its labels (colour, alarm), collection percentage, ignored flag and
 * training defaults; editable by admins. */
function PlotTypeRow({
  plotType,
  labels,
  options,
  canEdit,
  act,
}: {
  plotType: PlotType;
  labels: Map<string, Classification>;
  options: Options | undefined;
  canEdit: boolean;
  act: AdminActions["act"];
}) {
  const [collect, setCollect] = useState(String(plotType.collect_percent));
  const [ignored, setIgnored] = useState(plotType.ignored);
  const [arch, setArch] = useState(plotType.default_architecture ?? "");
  const [sampling, setSampling] = useState(plotType.default_sampling ?? "");
  const collectValue = Number(collect);
  const validCollect = collect.trim() !== "" && Number.isFinite(collectValue) && collectValue >= 0 && collectValue <= 100;
  const dirty =
    collectValue !== plotType.collect_percent || ignored !== plotType.ignored || arch !== (plotType.default_architecture ?? "") || sampling !== (plotType.default_sampling ?? "");
  const save = async () => {
    const body: Update = {
      collect_percent: collectValue,
      ignored,
      default_architecture: (arch || null) as Update["default_architecture"],
      default_sampling: (sampling || null) as Update["default_sampling"],
    };
    await act(() => ok(api.PATCH("/api/plot-types/{plot_type_id}", { params: { path: { plot_type_id: plotType.id } }, body })));
  };
  return (
    <tr className={plotType.ignored ? "disabled" : ""} data-testid="pt-row" data-plot-type={plotType.name} data-ignored={String(plotType.ignored)} data-collect={String(plotType.collect_percent)}>
      <td>
        {plotType.name}
        <div className="muted">{plotType.detector}</div>
      </td>
      <td>
        <span className="chips">
          {plotType.labels.map((name) => {
            const label = labels.get(name);
            const color = label?.color ?? "#888888";
            return (
              <span key={name} className={`badge${label?.alarm ? " alarm-label" : ""}`} style={{ background: color, color: textOn(color) }} title={label?.alarm ? `${name} raises alarms` : name}>
                {name}
                {label?.alarm ? " ⚠" : ""}
              </span>
            );
          })}
        </span>
      </td>
      <td className="num">
        <input type="number" min={0} max={100} step="0.1" value={collect} disabled={!canEdit} onChange={(e) => setCollect(e.target.value)} data-testid="pt-collect" aria-label={`collect percentage of ${plotType.name}`} />
      </td>
      <td>
        <CheckField label={ignored ? "ignored" : "active"} checked={ignored} disabled={!canEdit} onChange={setIgnored} testId="pt-ignored" />
      </td>
      <td>
        <select value={arch} disabled={!canEdit} onChange={(e) => setArch(e.target.value)} data-testid="pt-arch" aria-label={`default architecture of ${plotType.name}`}>
          <option value="">Hydra's ({options?.default_architecture ?? "…"})</option>
          <Options values={options?.architectures ?? []} />
        </select>
      </td>
      <td>
        <select value={sampling} disabled={!canEdit} onChange={(e) => setSampling(e.target.value)} data-testid="pt-sampling" aria-label={`default sampling of ${plotType.name}`}>
          <option value="">Hydra's ({options?.default_sampling ?? "…"})</option>
          <Options values={options?.sampling_methods ?? []} />
        </select>
      </td>
      <td className="num">
        {plotType.plots_labelled} / {plotType.plots_kept}
      </td>
      <td>
        {canEdit && (
          <button type="button" className="primary" disabled={!dirty || !validCollect} onClick={() => void save()} data-testid="pt-save">
            Save
          </button>
        )}
      </td>
    </tr>
  );
}

/** Plot types: labels, collection percentage, ignored or active, training defaults. */
export function PlotTypesAdmin({ canEdit }: { canEdit: boolean }) {
  const { version, error, act } = useAdminActions();
  const [filter, setFilter] = useState("");
  const list = useQuery(`admin-plot-types-${filter}-${version}`, (signal) =>
    ok(api.GET("/api/plot-types", { params: { query: { limit: 500, ...(filter ? { name: filter } : {}) } }, signal })),
  );
  const classes = useQuery("admin-classifications", (signal) => ok(api.GET("/api/classifications", { signal })));
  const options = useQuery("admin-training-options", (signal) => ok(api.GET("/api/training-options", { signal })));
  const labels = new Map((classes.data?.items ?? []).map((c) => [c.name, c]));
  const items = list.data?.items ?? [];
  return (
    <div data-testid="plot-types-admin">
      <h2>Plot types</h2>
      <p className="muted">
        An ignored plot type is not fed to the models. The collect percentage is the unbiased sample kept for labelling (every Bad and unconfirmed image is kept anyway).
        {canEdit ? (
          <>
            {" "}
            Labels, their colours and alarm flags, and each plot type's valid labels are edited on the <Link to="/labels">Labels</Link> page (⚠: raises alarms).
          </>
        ) : (
          " Read-only for developers."
        )}
      </p>
      <Notice text={list.error || classes.error || options.error || error} />
      <div className="toolbar">
        <TextField label="name contains" value={filter} maxLength={128} onChange={setFilter} testId="pt-filter" />
        <span className="muted">
          {items.length}
          {list.data?.total && list.data.total > items.length ? ` of ${list.data.total}` : ""} plot types
        </span>
      </div>
      <ListTable
        testId="plot-types"
        columns={[
          "Plot type",
          "Labels",
          num("Collect %"),
          "State",
          "Default architecture",
          "Default sampling",
          num("Labelled / kept"),
          "",
        ]}
        rows={items}
      >
        {(pt) => (
          <PlotTypeRow
            key={`${pt.id}-${version}-${pt.collect_percent}-${pt.ignored}-${pt.default_architecture}-${pt.default_sampling}`}
            plotType={pt}
            labels={labels}
            options={options.data}
            canEdit={canEdit}
            act={act}
          />
        )}
      </ListTable>
    </div>
  );
}
