import { useState } from "react";
import type { components } from "../api/schema";
import { useAdminActions, type AdminActions } from "../components/admin/useAdminActions";
import { CheckField, SubmitForm, TextField } from "../components/Form";
import { ListTable } from "../components/ListTable";
import { Notice } from "../components/Notice";
import { PlotTypeSelect } from "../components/PlotTypeSelect";
import { useAuth } from "../lib/auth";
import { api, ok } from "../lib/client";
import { textOn } from "../lib/colors";
import type { Classification, PlotType } from "../lib/types";
import { useQuery } from "../lib/useQuery";
import { usePlotTypes } from "../lib/usePlotTypes";

type LabelIn = components["schemas"]["ClassificationIn"];

// The API's rule (hydra_common.labels): a letter, then letters, digits, _ or -; 1 to 32.
const NAME_RULE = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

function Swatch({ color, name }: { color: string; name: string }) {
  return (
    <span className="badge" style={{ background: color, color: textOn(color) }} data-testid="label-swatch" data-color={color}>
      {name}
    </span>
  );
}

/** One label: colour, flags and description, editable in place. */
function LabelRow({ label, act }: { label: Classification; act: AdminActions["act"] }) {
  const [color, setColor] = useState(label.color);
  const [alarm, setAlarm] = useState(label.alarm);
  const [trainable, setTrainable] = useState(label.trainable);
  const [description, setDescription] = useState(label.description);
  const dirty = color !== label.color || alarm !== label.alarm || trainable !== label.trainable || description !== label.description;
  const save = () =>
    act(() =>
      ok(
        api.PATCH("/api/classifications/{classification_id}", {
          params: { path: { classification_id: label.id } },
          body: { color, alarm, trainable, description },
        }),
      ),
    );
  return (
    <tr data-testid="label-row" data-label={label.name} data-alarm={String(label.alarm)} data-trainable={String(label.trainable)}>
      <td>
        <Swatch color={label.color} name={label.name} />
      </td>
      <td>
        <input type="color" value={color} onChange={(e) => setColor(e.target.value)} aria-label={`colour of ${label.name}`} data-testid="label-color" />
      </td>
      <td>
        <input type="checkbox" checked={alarm} onChange={(e) => setAlarm(e.target.checked)} aria-label={`${label.name} raises alarms`} data-testid="label-alarm" />
      </td>
      <td>
        <input type="checkbox" checked={trainable} onChange={(e) => setTrainable(e.target.checked)} aria-label={`${label.name} is trained on`} data-testid="label-trainable" />
      </td>
      <td>
        <input type="text" value={description} maxLength={255} onChange={(e) => setDescription(e.target.value)} data-testid="label-description" />
      </td>
      <td>
        <button type="button" disabled={!dirty} onClick={() => void save()} data-testid="label-save">
          Save
        </button>
      </td>
    </tr>
  );
}

/** A new label for the hall's set. */
function NewLabelForm({ act }: { act: AdminActions["act"] }) {
  const [name, setName] = useState("");
  const [pickColor, setPickColor] = useState(false);
  const [color, setColor] = useState("#17becf");
  const [alarm, setAlarm] = useState(false);
  const [trainable, setTrainable] = useState(true);
  const [description, setDescription] = useState("");
  const valid = NAME_RULE.test(name);
  const create = async () => {
    const body: LabelIn = { name, alarm, trainable, description };
    if (pickColor) body.color = color;
    if (await act(() => ok(api.POST("/api/classifications", { body })))) {
      setName("");
      setDescription("");
    }
  };
  return (
    <SubmitForm
      onSubmit={() => void create()}
      testId="new-label"
      submit="Add label"
      submitTestId="new-label-create"
      disabled={!valid}
      after={name && !valid && <span className="muted">a letter, then letters, digits, _ or - (at most 32)</span>}
    >
      <TextField label="name" value={name} maxLength={32} onChange={setName} placeholder="e.g. Glitch" testId="new-label-name" />
      <label className="field">
        <input type="checkbox" checked={pickColor} onChange={(e) => setPickColor(e.target.checked)} data-testid="new-label-pick-color" />
        colour
        <input type="color" value={color} disabled={!pickColor} onChange={(e) => setColor(e.target.value)} data-testid="new-label-color" />
        {!pickColor && <span className="muted">(one no label has)</span>}
      </label>
      <CheckField label="raises alarms" checked={alarm} onChange={setAlarm} testId="new-label-alarm" />
      <CheckField label="trained on" checked={trainable} onChange={setTrainable} testId="new-label-trainable" />
      <TextField label="description" value={description} maxLength={255} onChange={setDescription} testId="new-label-description" />
    </SubmitForm>
  );
}

/** Which labels are valid for one plot type. */
function PlotTypeLabels({ plotType, labels, attempt, onSaved }: { plotType: PlotType; labels: Classification[]; attempt: AdminActions["attempt"]; onSaved: () => void }) {
  const [chosen, setChosen] = useState<Set<string>>(() => new Set(plotType.labels));
  const dirty = chosen.size !== plotType.labels.length || plotType.labels.some((l) => !chosen.has(l));
  const toggle = (name: string, on: boolean) =>
    setChosen((c) => {
      const next = new Set(c);
      if (on) next.add(name);
      else next.delete(name);
      return next;
    });
  const save = async () => {
    const body = { labels: labels.filter((l) => chosen.has(l.name)).map((l) => l.name) };
    if (await attempt(() => ok(api.PUT("/api/plot-types/{plot_type_id}/labels", { params: { path: { plot_type_id: plotType.id } }, body })))) onSaved();
  };
  return (
    <div data-testid="plot-type-labels" data-plot-type={plotType.name}>
      <div className="toolbar">
        {labels.map((l) => (
          <CheckField key={l.id} label={<Swatch color={l.color} name={l.name} />} checked={chosen.has(l.name)} onChange={(on) => toggle(l.name, on)} testId={`valid-${l.name}`} />
        ))}
      </div>
      <button type="button" className="primary" disabled={!dirty || chosen.size === 0} onClick={() => void save()} data-testid="save-plot-type-labels">
        Save {plotType.name}'s labels
      </button>{" "}
      <span className="muted">A label that images of the plot type carry cannot be removed (relabel them first).</span>
    </div>
  );
}

/** The hall's labels (admins): colours, alarm and trainable flags, new labels, and which
 * labels each plot type offers. */
export function LabelsPage() {
  const { me } = useAuth();
  const { version, error, act, attempt } = useAdminActions();
  const [plotTypeName, setPlotTypeName] = useState("");
  const list = useQuery(`classifications-${version}`, (signal) => ok(api.GET("/api/classifications", { signal })));
  const { plotTypes, error: typesError, reload: reloadPlotTypes } = usePlotTypes();
  const plotType = plotTypes.find((p) => p.name === plotTypeName);
  const labels = list.data?.items ?? [];
  if (me?.role !== "admin") {
    return (
      <section className="page labels">
        <Notice text="Only admins manage the hall's labels." />
      </section>
    );
  }
  return (
    <section className="page labels" data-testid="labels-page">
      <h2>Labels</h2>
      <p className="muted">
        Alarm labels raise alarms and get heat maps (like Bad); labels not trained on keep their images out of training sets (like Ignore). Names never change: models
        name their outputs by them.
      </p>
      <Notice text={list.error || typesError || error} />
      <ListTable className="labels-table" testId="labels" columns={["Label", "Colour", "Alarm", "Trained on", "Description", ""]} rows={labels}>
        {(l) => <LabelRow key={`${l.id}-${version}`} label={l} act={act} />}
      </ListTable>
      <h3>New label</h3>
      <NewLabelForm act={act} />
      <h3>Labels of a plot type</h3>
      <div className="toolbar">
        <PlotTypeSelect plotTypes={plotTypes} value={plotTypeName} onChange={setPlotTypeName} />
      </div>
      {plotType && (
        <PlotTypeLabels
          key={`${plotType.id}-${plotType.labels.join(",")}-${labels.length}`}
          plotType={plotType}
          labels={labels}
          attempt={attempt}
          onSaved={reloadPlotTypes}
        />
      )}
    </section>
  );
}
