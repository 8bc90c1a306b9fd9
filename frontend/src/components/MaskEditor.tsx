import { useEffect, useRef, useState, type PointerEvent } from "react";
import type { components } from "../api/schema";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { Notice } from "./Notice";

export type PlotTypeMasks = components["schemas"]["PlotTypeMasksOut"];
export type Mask = components["schemas"]["MaskOut"];

/** The frame of a Run-page card is 4:3 and shows the image contained in it (styles.css). */
const FRAME_ASPECT = 4 / 3;
const MIN_SIDE = 0.01; // a click without a drag draws nothing

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Where an image of this aspect ratio lies inside the card's frame, in % of the frame. */
export function containedBox(aspect: number): Box {
  if (!(aspect > 0)) return { left: 0, top: 0, width: 100, height: 100 };
  if (aspect >= FRAME_ASPECT) {
    const height = (FRAME_ASPECT / aspect) * 100;
    return { left: 0, top: (100 - height) / 2, width: 100, height };
  }
  const width = (aspect / FRAME_ASPECT) * 100;
  return { left: (100 - width) / 2, top: 0, width, height: 100 };
}

function expiryText(m: { until_run: number | null; until_time: string | null }): string {
  const parts = [];
  if (m.until_run !== null) parts.push(`run ${m.until_run}`);
  if (m.until_time !== null) parts.push(formatTime(m.until_time));
  return `until ${parts.join(" or ")}`;
}

function Rects({ masks }: { masks: Mask[] }) {
  return (
    <>
      {masks.map((m) => (
        <div
          key={m.id}
          className="mask-rect"
          style={{ left: `${m.x0 * 100}%`, top: `${m.y0 * 100}%`, width: `${(m.x1 - m.x0) * 100}%`, height: `${(m.y1 - m.y0) * 100}%` }}
          title={`accepted: ${m.reason} (${expiryText(m)}, by ${m.created_by})`}
          data-testid="mask-overlay"
        />
      ))}
    </>
  );
}

/** A card's masks in force, drawn over its image (the image is contained in the frame). */
export function MaskOverlay({ masks, imageUrl }: { masks: Mask[]; imageUrl: string | null }) {
  const [aspect, setAspect] = useState(0);
  useEffect(() => {
    if (!imageUrl) return;
    const img = new Image();
    img.onload = () => setAspect(img.naturalHeight > 0 ? img.naturalWidth / img.naturalHeight : 0);
    img.src = imageUrl;
    return () => {
      img.onload = null;
    };
  }, [imageUrl]);
  const shown = masks.filter((m) => m.in_force);
  if (shown.length === 0) return null;
  const box = containedBox(aspect);
  return (
    <div className="mask-layer" style={{ left: `${box.left}%`, top: `${box.top}%`, width: `${box.width}%`, height: `${box.height}%` }} data-testid="mask-layer">
      <Rects masks={shown} />
    </div>
  );
}

interface Draft {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  reason: string;
  untilRun: string;
  untilTime: string; // a datetime-local value, read as UTC
}

function toDraft(m: Mask): Draft {
  return {
    x0: m.x0,
    y0: m.y0,
    x1: m.x1,
    y1: m.y1,
    reason: m.reason,
    untilRun: m.until_run === null ? "" : String(m.until_run),
    untilTime: m.until_time === null ? "" : m.until_time.slice(0, 16),
  };
}

const clamp = (v: number) => Math.min(1, Math.max(0, v));
const round = (v: number) => Math.round(v * 10_000) / 10_000;

/**
 * Masks of accepted problems for one plot type: drag on the image to draw a rectangle, give
 * each a reason and an expiry (a run number, a UTC date, or both), and save. While one is in
 * force, a Bad whose heat map lies mostly inside the masks is recorded "Accepted" and does
 * not alarm. The API enforces who may (an admin, or an expert of the plot type).
 */
export function MaskEditor({ plotTypeId, imageUrl, onSaved }: { plotTypeId: number; imageUrl: string | null; onSaved: () => void }) {
  const [drafts, setDrafts] = useState<Draft[] | null>(null);
  const [drawing, setDrawing] = useState<{ x: number; y: number; x1: number; y1: number } | null>(null);
  const [error, setError] = useState("");
  const [saved, setSaved] = useState("");
  const canvas = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let live = true;
    ok(api.GET("/api/plot-types/{plot_type_id}/masks", { params: { path: { plot_type_id: plotTypeId } } }))
      .then((r) => live && setDrafts(r.masks.map(toDraft)))
      .catch((err: unknown) => live && setError(errorText(err)));
    return () => {
      live = false;
    };
  }, [plotTypeId]);

  const at = (e: PointerEvent<HTMLDivElement>) => {
    const r = canvas.current?.getBoundingClientRect();
    if (!r || r.width === 0 || r.height === 0) return { x: 0, y: 0 };
    return { x: clamp((e.clientX - r.left) / r.width), y: clamp((e.clientY - r.top) / r.height) };
  };
  const down = (e: PointerEvent<HTMLDivElement>) => {
    e.preventDefault();
    // Moves outside the image still belong to this drag (clamped to its edges).
    e.currentTarget.setPointerCapture?.(e.pointerId);
    const p = at(e);
    setDrawing({ x: p.x, y: p.y, x1: p.x, y1: p.y });
  };
  const move = (e: PointerEvent<HTMLDivElement>) => {
    if (!drawing) return;
    const p = at(e);
    setDrawing({ ...drawing, x1: p.x, y1: p.y });
  };
  const up = () => {
    if (!drawing) return;
    const d = drawing;
    setDrawing(null);
    const rect = { x0: round(Math.min(d.x, d.x1)), y0: round(Math.min(d.y, d.y1)), x1: round(Math.max(d.x, d.x1)), y1: round(Math.max(d.y, d.y1)) };
    if (rect.x1 - rect.x0 < MIN_SIDE || rect.y1 - rect.y0 < MIN_SIDE) return;
    setDrafts((old) => [...(old ?? []), { ...rect, reason: "", untilRun: "", untilTime: "" }]);
    setSaved("");
  };
  const change = (i: number, patch: Partial<Draft>) => setDrafts((old) => (old ?? []).map((d, j) => (j === i ? { ...d, ...patch } : d)));
  const remove = (i: number) => setDrafts((old) => (old ?? []).filter((_, j) => j !== i));

  const problems = (drafts ?? []).map((d) =>
    !d.reason.trim() ? "a reason" : d.untilRun === "" && d.untilTime === "" ? "an expiry (run or date)" : "",
  );
  const save = async () => {
    setError("");
    setSaved("");
    try {
      const body = {
        masks: (drafts ?? []).map((d) => ({
          x0: d.x0,
          y0: d.y0,
          x1: d.x1,
          y1: d.y1,
          reason: d.reason.trim(),
          until_run: d.untilRun === "" ? null : Number(d.untilRun),
          until_time: d.untilTime === "" ? null : `${d.untilTime}:00Z`,
        })),
      };
      const r = await ok(api.PUT("/api/plot-types/{plot_type_id}/masks", { params: { path: { plot_type_id: plotTypeId } }, body }));
      setDrafts(r.masks.map(toDraft));
      setSaved(`${r.masks.length} mask${r.masks.length === 1 ? "" : "s"} saved`);
      onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const preview = drawing && {
    left: `${Math.min(drawing.x, drawing.x1) * 100}%`,
    top: `${Math.min(drawing.y, drawing.y1) * 100}%`,
    width: `${Math.abs(drawing.x1 - drawing.x) * 100}%`,
    height: `${Math.abs(drawing.y1 - drawing.y) * 100}%`,
  };
  return (
    <section className="mask-editor" data-testid="mask-editor">
      <h3>Accepted problems (masks)</h3>
      <p className="muted">Drag on the image to mark a region where a known problem is accepted.</p>
      {imageUrl ? (
        <div className="mask-canvas" ref={canvas} onPointerDown={down} onPointerMove={move} onPointerUp={up} data-testid="mask-canvas">
          <img src={imageUrl} alt="" draggable={false} />
          {(drafts ?? []).map((d, i) => (
            <div
              key={i}
              className="mask-rect"
              style={{ left: `${d.x0 * 100}%`, top: `${d.y0 * 100}%`, width: `${(d.x1 - d.x0) * 100}%`, height: `${(d.y1 - d.y0) * 100}%` }}
            >
              <span className="mask-index">{i + 1}</span>
            </div>
          ))}
          {preview && <div className="mask-rect drawing" style={preview} />}
        </div>
      ) : (
        <p className="muted">No image to draw on.</p>
      )}
      {(drafts ?? []).map((d, i) => (
        <div className="mask-row" key={i} data-testid="mask-row">
          <span className="mask-index">{i + 1}</span>
          <input placeholder="reason (e.g. dead channel 17)" value={d.reason} maxLength={255} onChange={(e) => change(i, { reason: e.target.value })} data-testid="mask-reason" />
          <label>
            until run
            <input type="number" min={0} value={d.untilRun} onChange={(e) => change(i, { untilRun: e.target.value })} data-testid="mask-until-run" />
          </label>
          <label>
            or until (UTC)
            <input type="datetime-local" value={d.untilTime} onChange={(e) => change(i, { untilTime: e.target.value })} data-testid="mask-until-time" />
          </label>
          <button type="button" onClick={() => remove(i)} data-testid="mask-remove">
            remove
          </button>
          {problems[i] && <span className="error-text">needs {problems[i]}</span>}
        </div>
      ))}
      <button type="button" disabled={drafts === null || problems.some(Boolean)} onClick={() => void save()} data-testid="mask-save">
        Save masks
      </button>
      {saved && (
        <span className="muted" data-testid="mask-saved">
          {" "}
          {saved}
        </span>
      )}
      <Notice text={error} />
    </section>
  );
}
