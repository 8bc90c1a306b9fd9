import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { EditorFilters, NO_FILTER, type EditorFilter } from "../components/EditorFilters";
import { Field } from "../components/Form";
import { LabelStats } from "../components/LabelStats";
import { Notice } from "../components/Notice";
import { Pager } from "../components/Pager";
import { Palette } from "../components/Palette";
import { PlotTile } from "../components/PlotTile";
import { PlotTypeSelect } from "../components/PlotTypeSelect";
import { useAuth } from "../lib/auth";
import { api, errorText, ok } from "../lib/client";
import { canLabel } from "../lib/permissions";
import { labelsToApply, paintClick } from "../lib/selection";
import { useClassifications } from "../lib/useClassColors";
import { usePlotTypes } from "../lib/usePlotTypes";
import { useQuery } from "../lib/useQuery";
import { useStoredState } from "../lib/useStoredState";

// Images per page: an expert paints a whole run's worth at once (the API's limit is 500).
const PAGE_SIZES = [60, 120, 240, 480];

/** A datetime-local value as the ISO time the API takes ("" stays unset). */
function isoOrUndefined(local: string): string | undefined {
  return local ? new Date(local).toISOString() : undefined;
}

function intOrUndefined(s: string): number | undefined {
  return s === "" ? undefined : Number(s);
}

interface Paint {
  key: string;
  painted: Map<number, string>;
  last: number | null;
}

/** Experts label collected images: pick a label, paint images, Apply. */
export function LabelerPage() {
  const [params, setParams] = useSearchParams();
  const plotTypeName = params.get("plot_type") ?? "";
  const editor = params.get("mode") === "editor";
  // Unlabelled images newest first, or Suggested: most uncertain first (the API's margin
  // order, a few per run so one run's near-duplicates do not fill the page).
  const suggested = !editor && params.get("order") === "suggested";
  const { me } = useAuth();
  const { plotTypes, error: typesError } = usePlotTypes();
  const { colors } = useClassifications();
  const plotType = plotTypes.find((p) => p.name === plotTypeName);
  const labels = useMemo(() => plotType?.labels ?? [], [plotType]);

  const [chosen, setChosen] = useState("");
  const current = labels.includes(chosen) ? chosen : (labels[0] ?? "");
  const [filter, setFilter] = useState<EditorFilter>(NO_FILTER);
  const [offset, setOffset] = useState(0);
  const [storedPageSize, setPageSize] = useStoredState("labeler.pageSize", 120);
  const pageSize = PAGE_SIZES.includes(storedPageSize) ? storedPageSize : 120;
  const [version, setVersion] = useState(0);
  const [paint, setPaint] = useState<Paint>({ key: "", painted: new Map(), last: null });
  const [message, setMessage] = useState("");
  const [applyError, setApplyError] = useState("");
  const [busy, setBusy] = useState(false);

  const queryKey = plotTypeName ? JSON.stringify([plotTypeName, editor, suggested, filter, offset, pageSize, version]) : null;
  const plots = useQuery(queryKey, (signal) =>
    ok(
      api.GET("/api/plots", {
        params: {
          query: {
            plot_type: plotTypeName,
            labelled: editor,
            order: suggested ? "uncertainty" : undefined,
            label: editor && filter.label ? filter.label : undefined,
            run_min: editor ? intOrUndefined(filter.runMin) : undefined,
            run_max: editor ? intOrUndefined(filter.runMax) : undefined,
            since: editor ? isoOrUndefined(filter.since) : undefined,
            until: editor ? isoOrUndefined(filter.until) : undefined,
            limit: pageSize,
            offset,
          },
        },
        signal,
      }),
    ),
  );
  const items = useMemo(() => plots.data?.items ?? [], [plots.data]);
  const ids = useMemo(() => items.map((p) => p.id), [items]);
  // Paint belongs to the grid it was made on; a new grid starts clean.
  const painted = paint.key === queryKey ? paint.painted : new Map<number, string>();
  const last = paint.key === queryKey ? paint.last : null;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target && ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return;
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= 9 && labels[n - 1]) setChosen(labels[n - 1]);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [labels]);

  const click = (index: number, shift: boolean) => {
    if (!current || queryKey === null) return;
    setPaint({ key: queryKey, painted: paintClick(painted, ids, last, index, current, shift), last: index });
  };

  const apply = async () => {
    const body = labelsToApply(ids, painted);
    if (body.length === 0) return;
    setBusy(true);
    setApplyError("");
    try {
      const result = await ok(api.POST("/api/labels", { body }));
      setMessage(`Stored ${result.changed} label${result.changed === 1 ? "" : "s"}${result.unchanged ? ` (${result.unchanged} unchanged)` : ""}.`);
      // Unlabelled mode: the labelled images drop out, so the first page is the next batch.
      if (!editor) setOffset(0);
      setVersion((v) => v + 1);
    } catch (err) {
      setApplyError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const choosePlotType = (name: string) => {
    setOffset(0);
    setMessage("");
    setParams((p) => {
      p.set("plot_type", name);
      return p;
    });
  };
  const chooseMode = (toEditor: boolean) => {
    setOffset(0);
    setMessage("");
    setParams((p) => {
      if (toEditor) p.set("mode", "editor");
      else p.delete("mode");
      return p;
    });
  };

  const chooseOrder = (toSuggested: boolean) => {
    setOffset(0);
    setMessage("");
    setParams((p) => {
      if (toSuggested) p.set("order", "suggested");
      else p.delete("order");
      return p;
    });
  };

  const mayLabel = !!plotType && canLabel(me, plotType.name);
  return (
    <section className="page labeler">
      <div className="toolbar">
        <PlotTypeSelect plotTypes={plotTypes} value={plotTypeName} onChange={choosePlotType} />
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={!editor} className={editor ? "" : "active"} onClick={() => chooseMode(false)} data-testid="mode-unlabelled">
            Unlabelled
          </button>
          <button type="button" role="tab" aria-selected={editor} className={editor ? "active" : ""} onClick={() => chooseMode(true)} data-testid="mode-editor">
            Editor
          </button>
        </div>
        {!editor && (
          <Field label="order">
            <select value={suggested ? "suggested" : "newest"} onChange={(e) => chooseOrder(e.target.value === "suggested")} data-testid="labeler-order">
              <option value="newest">Newest</option>
              <option value="suggested">Suggested</option>
            </select>
          </Field>
        )}
        <Palette labels={labels} colors={colors} current={current} onPick={setChosen} />
        <button type="button" className="primary" disabled={!mayLabel || busy || painted.size === 0} onClick={() => void apply()} data-testid="apply-labels">
          Apply ({painted.size})
        </button>
        <button type="button" disabled={painted.size === 0} onClick={() => setPaint({ key: "", painted: new Map(), last: null })} data-testid="clear-paint">
          Clear
        </button>
        <Field label="per page">
          <select
            value={pageSize}
            onChange={(e) => {
              setPageSize(Number(e.target.value));
              setOffset(0);
            }}
            data-testid="page-size"
          >
            {PAGE_SIZES.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <Notice text={typesError} />
      {!plotTypeName && <Notice kind="info" text="Choose a plot type to label." />}
      {plotType && !me && (
        <Notice kind="info" text="Log in to label." />
      )}
      {plotType && me && !mayLabel && <Notice kind="info" text={`You may not label ${plotType.name}.`} />}
      {editor && plotType && <EditorFilters labels={labels} value={filter} onApply={(f) => { setFilter(f); setOffset(0); }} />}
      <Notice text={plots.error || applyError} />
      <Notice kind="info" text={message} />
      {plotType && (
        <div className="labeler-body">
          <div>
            {suggested && (
              <p className="muted hint" data-testid="suggested-hint">
                Suggested: the images the model is least sure of first (smallest margin between its top two weights), at most 3 of one run before the next runs' — the labels that teach the next model most.
              </p>
            )}
            <p className="muted hint">Click paints an image with the current label, shift+click paints the range from the last click; keys 1–9 pick a label.</p>
            <div className="plot-grid" data-testid="plot-grid">
              {items.map((p, i) => (
                <PlotTile key={p.id} plot={p} painted={painted.get(p.id)} colors={colors} onClick={(shift) => click(i, shift)} />
              ))}
            </div>
            {!plots.loading && items.length === 0 && (
              <Notice kind="info" text={editor ? "No labelled images match." : "Nothing left to label here."} />
            )}
            <Pager offset={offset} limit={pageSize} total={plots.data?.total ?? 0} onChange={setOffset} />
          </div>
          <LabelStats plotType={plotTypeName} colors={colors} version={version} />
        </div>
      )}
      {!me && <p><Link to="/login">Log in</Link></p>}
    </section>
  );
}
