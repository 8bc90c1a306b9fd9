import { useState } from "react";
import type { components } from "../api/schema";
import { api, errorText, ok } from "../lib/client";
import { formatTime } from "../lib/format";
import { useQuery } from "../lib/useQuery";
import { Notice } from "./Notice";

type Shadow = components["schemas"]["ShadowOut"];

function percent(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`;
}

function millis(x: number | null | undefined): string {
  return x === null || x === undefined ? "—" : `${(x * 1000).toFixed(1)} ms`;
}

function Figures({ shadow }: { shadow: Shadow }) {
  return (
    <dl className="details" data-testid="shadow-figures">
      <dt>Images</dt>
      <dd data-testid="shadow-images">
        {shadow.images.toLocaleString()} seen, {shadow.compared.toLocaleString()} compared
        {shadow.errors > 0 && <span className="muted"> ({shadow.errors} failed)</span>}
        {shadow.last_at && <span className="muted"> · last {formatTime(shadow.last_at)}</span>}
      </dd>
      <dt>Agreement with the active model</dt>
      <dd data-testid="shadow-agreement">
        {percent(shadow.agreement)} <span className="muted">({shadow.agreements.toLocaleString()} of {shadow.compared.toLocaleString()})</span>
      </dd>
      <dt>Agreement with experts' labels</dt>
      <dd data-testid="shadow-label-agreement">
        shadow {percent(shadow.label_agreement)}, active {percent(shadow.active_label_agreement)} <span className="muted">({shadow.labelled.toLocaleString()} labelled)</span>
      </dd>
      <dt>Cost per image</dt>
      <dd data-testid="shadow-cost">
        shadow {millis(shadow.seconds_per_image)}, active {millis(shadow.active_seconds_per_image)}
      </dd>
    </dl>
  );
}

function Disagreements({ shadow }: { shadow: Shadow }) {
  if (shadow.disagreements.length === 0) return null;
  return (
    <>
      <h4>Latest disagreements</h4>
      <div className="tiles" data-testid="shadow-disagreements">
        {shadow.disagreements.map((d) => (
          <figure key={d.order_id} className="tile" data-testid="shadow-disagreement">
            {d.image_url ? <img src={d.image_url} alt={`run ${d.run_number} chunk ${d.chunk}`} loading="lazy" width={160} /> : <span className="muted">image not stored</span>}
            <figcaption>
              shadow <strong>{d.shadow_verdict}</strong> · active <strong>{d.active_verdict}</strong>
              {d.human_label && <> · expert <strong>{d.human_label}</strong></>}
              <br />
              <span className="muted">
                run {d.run_number}
                {d.chunk >= 0 && ` chunk ${d.chunk}`}
              </span>
            </figcaption>
          </figure>
        ))}
      </div>
    </>
  );
}

/** A candidate model in shadow: start it (with an optional promotion rule), watch its
 * agreement with the active model and with labels, its cost, its disagreements; promote or
 * stop it. */
export function ShadowPanel({ modelId, canEdit, onChanged }: { modelId: number; canEdit: boolean; onChanged: () => void }) {
  const [error, setError] = useState("");
  const [minImages, setMinImages] = useState("");
  const [minAgreement, setMinAgreement] = useState("");
  const query = useQuery(`shadow-${modelId}`, (signal) => ok(api.GET("/api/models/{model_id}/shadow", { params: { path: { model_id: modelId } }, signal })), 5_000);
  const shadow = query.data;
  const act = async (work: () => Promise<unknown>) => {
    setError("");
    try {
      await work();
      query.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const path = { params: { path: { model_id: modelId } } };
  const start = () =>
    act(() =>
      ok(
        api.POST("/api/models/{model_id}/shadow", {
          ...path,
          body: {
            min_images: minImages ? Number(minImages) : null,
            min_agreement: minAgreement ? Number(minAgreement) / 100 : null,
          },
        }),
      ),
    );
  const stop = () => act(() => ok(api.DELETE("/api/models/{model_id}/shadow", path)));
  const promote = () =>
    act(async () => {
      await ok(api.POST("/api/models/{model_id}/promote", path));
      onChanged();
    });
  if (!shadow) return <Notice text={query.error} />;
  return (
    <div className="shadow-panel" data-testid="shadow-panel" data-in-shadow={String(shadow.in_shadow)}>
      {shadow.in_shadow ? (
        <p>
          <strong>In shadow</strong> beside the active model since {shadow.started_at && formatTime(shadow.started_at)} (started by {shadow.started_by}). Its verdicts change nothing on the Run page.
          <br />
          <span data-testid="shadow-rule">
            Promotion rule:{" "}
            {shadow.min_images === null && shadow.min_agreement === null
              ? "none"
              : [shadow.min_images !== null && `at least ${shadow.min_images} images`, shadow.min_agreement !== null && `agreement ≥ ${percent(shadow.min_agreement)}`].filter(Boolean).join(", ")}
            {shadow.rule_problem && <span className="muted"> — {shadow.rule_problem}</span>}
          </span>
        </p>
      ) : (
        <p className="muted">Run this model beside the active one on the live stream, to compare before promoting it.</p>
      )}
      {(shadow.in_shadow || shadow.images > 0) && <Figures shadow={shadow} />}
      {canEdit && (
        <div className="toolbar">
          {shadow.in_shadow ? (
            <>
              <button type="button" className="primary" disabled={!shadow.promotable} title={shadow.rule_problem} onClick={() => void promote()} data-testid="shadow-promote">
                Promote from shadow
              </button>
              <button type="button" onClick={() => void stop()} data-testid="shadow-stop">
                Stop shadow
              </button>
            </>
          ) : (
            <>
              <label>
                at least{" "}
                <input type="number" min={1} step={1} value={minImages} onChange={(e) => setMinImages(e.target.value)} placeholder="N" style={{ width: "6em" }} data-testid="shadow-min-images" /> images
              </label>
              <label>
                agreement ≥{" "}
                <input type="number" min={0} max={100} step={0.1} value={minAgreement} onChange={(e) => setMinAgreement(e.target.value)} placeholder="%" style={{ width: "5em" }} data-testid="shadow-min-agreement" /> %
              </label>
              <button type="button" onClick={() => void start()} data-testid="shadow-start">
                Run in shadow
              </button>
            </>
          )}
        </div>
      )}
      <Notice text={error} />
      <Disagreements shadow={shadow} />
    </div>
  );
}
