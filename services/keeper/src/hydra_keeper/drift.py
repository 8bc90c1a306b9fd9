"""Drift: is a plot type's active model still seeing what it was tested on?

Every ``HYDRA_DRIFT_INTERVAL_SECONDS`` the keeper compares, per plot type with an active
model, the model's inferences over the trailing ``HYDRA_DRIFT_WINDOW_HOURS`` (its newest
``MAX_WINDOW`` at most) with the model's test split (``model_evaluations``, recorded by the
trainer when it evaluated the model):

- the distribution of the top weight (the verdict's confidence), in ten bins over 0..1;
- the verdict mix (the share of each label).

The statistic is the *population stability index*, PSI = sum over bins of
(live - test) * ln(live / test), shares smoothed by half an image per bin so an empty bin
is finite. Usual reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a real
one. The plot type's ``drift_score`` is the larger of the two PSIs (None until the window
holds ``HYDRA_DRIFT_MIN_INFERENCES``).

``label_agreement`` is the share of the window's images that experts labelled since whose
label is the model's verdict (over kept images only, so it leans to the hard ones: every
Bad and unconfirmed image is kept). Retraining is suggested when the drift score reaches
``HYDRA_DRIFT_PSI_THRESHOLD``, or when at least ``HYDRA_DRIFT_MIN_LABELS`` labels agree
less than ``HYDRA_DRIFT_AGREEMENT_THRESHOLD``; the evidence (histograms, mixes, reasons)
is stored with the figures in ``model_drift`` (read by ``GET /api/drift``) and exported as
``hydra_keeper_drift_score`` and ``hydra_keeper_label_agreement`` per plot type.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    Label,
    ModelDrift,
    ModelEvaluation,
    Plot,
    PlotType,
    RunHistory,
    Split,
    utcnow,
)
from hydra_common.logs import get_logger
from hydra_common.settings import HydraSettings
from hydra_keeper.dbutil import upsert
from hydra_keeper.loops import every
from hydra_keeper.metrics import DriftMetrics

log = get_logger(__name__)

BINS = 10
MAX_WINDOW = 5000  # newest inferences of a window read per plot type (bounded work)
MIN_TEST_IMAGES = 10  # fewer test images give no reference to compare with
FIRST_PASS_DELAY_SECONDS = 60.0
STATISTIC = "PSI (population stability index), shares smoothed by 0.5 per bin"
model_drift_t = ModelDrift.__table__


class DriftSettings(HydraSettings):
    """When the keeper measures drift, over what, and when it suggests retraining."""

    drift_interval_seconds: float = Field(
        300.0, ge=0, description="How often drift is measured per plot type (0: never)."
    )
    drift_window_hours: float = Field(
        24.0, gt=0, le=24 * 365, description="Trailing window of inferences compared."
    )
    drift_min_inferences: int = Field(
        50, ge=1, description="Inferences a window needs before its drift score counts."
    )
    drift_psi_threshold: float = Field(
        0.25,
        gt=0,
        description="Drift score (PSI) from which retraining is suggested (and alerted).",
    )
    drift_agreement_threshold: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Label agreement below which retraining is suggested.",
    )
    drift_min_labels: int = Field(
        20, ge=1, description="Labelled window images the agreement needs to count."
    )


def psi(live: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """PSI of two histograms given as counts per bin (see the module docstring)."""
    keys = set(live) | set(reference)
    n_live = sum(live.values()) + 0.5 * len(keys)
    n_ref = sum(reference.values()) + 0.5 * len(keys)
    total = 0.0
    for k in keys:
        a = (live.get(k, 0.0) + 0.5) / n_live
        e = (reference.get(k, 0.0) + 0.5) / n_ref
        total += (a - e) * math.log(a / e)
    return total


def weight_histogram(top_weights: Iterable[float]) -> list[int]:
    """Counts of top weights in ``BINS`` equal bins over 0..1 (1.0 in the last)."""
    counts = [0] * BINS
    for w in top_weights:
        counts[min(BINS - 1, max(0, int(w * BINS)))] += 1
    return counts


def _as_bins(counts: Sequence[int]) -> dict[str, float]:
    return {str(i): float(c) for i, c in enumerate(counts)}


@dataclass
class DriftFigures:
    """One plot type's drift, as stored in ``model_drift``."""

    plot_type_id: int
    plot_type: str
    model_id: int
    window_hours: float
    inferences: int
    test_images: int
    psi_top_weight: float | None = None
    psi_verdicts: float | None = None
    drift_score: float | None = None
    labelled: int = 0
    label_agreement: float | None = None
    retrain_suggested: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)

    def row(self, now: datetime) -> dict[str, Any]:
        """The ``model_drift`` row."""
        return {
            "plot_type_id": self.plot_type_id,
            "model_id": self.model_id,
            "window_hours": self.window_hours,
            "inferences": self.inferences,
            "test_images": self.test_images,
            "psi_top_weight": self.psi_top_weight,
            "psi_verdicts": self.psi_verdicts,
            "drift_score": self.drift_score,
            "labelled": self.labelled,
            "label_agreement": self.label_agreement,
            "retrain_suggested": self.retrain_suggested,
            "evidence": self.evidence,
            "computed_at": now,
        }


def compare(
    settings: DriftSettings,
    live: Sequence[tuple[float, str]],
    test: Sequence[tuple[float, str]],
    agreements: Sequence[bool],
) -> dict[str, Any]:
    """The figures of one plot type from (top weight, verdict) of the window and of the
    test split, and whether each labelled window image's label was the verdict."""
    live_hist, test_hist = (weight_histogram(w for w, _ in rows) for rows in (live, test))
    live_mix, test_mix = (Counter(v for _, v in rows) for rows in (live, test))
    out: dict[str, Any] = {"psi_top_weight": None, "psi_verdicts": None, "drift_score": None}
    reasons: list[str] = []
    enough = len(live) >= settings.drift_min_inferences and len(test) >= MIN_TEST_IMAGES
    if enough:
        p_top = round(psi(_as_bins(live_hist), _as_bins(test_hist)), 4)
        p_mix = round(psi({k: float(v) for k, v in live_mix.items()}, dict(test_mix)), 4)
        out |= {"psi_top_weight": p_top, "psi_verdicts": p_mix, "drift_score": max(p_top, p_mix)}
        if out["drift_score"] >= settings.drift_psi_threshold:
            which = "top weight" if p_top >= p_mix else "verdict mix"
            reasons.append(
                f"drift score {out['drift_score']:.2f} (PSI of the {which}) >= "
                f"{settings.drift_psi_threshold:.2f}"
            )
    labelled = len(agreements)
    agreement = round(sum(agreements) / labelled, 4) if labelled else None
    if agreement is not None and labelled >= settings.drift_min_labels:
        if agreement < settings.drift_agreement_threshold:
            reasons.append(
                f"experts agreed with {agreement:.0%} of {labelled} verdicts "
                f"(< {settings.drift_agreement_threshold:.0%})"
            )
    out |= {
        "labelled": labelled,
        "label_agreement": agreement,
        "retrain_suggested": bool(reasons),
        "evidence": {
            "statistic": STATISTIC,
            "reasons": reasons,
            "bin_edges": [i / BINS for i in range(BINS + 1)],
            "top_weight_live": live_hist,
            "top_weight_test": test_hist,
            "verdicts_live": dict(live_mix),
            "verdicts_test": dict(test_mix),
            "psi_threshold": settings.drift_psi_threshold,
            "agreement_threshold": settings.drift_agreement_threshold,
            "min_inferences": settings.drift_min_inferences,
            "min_labels": settings.drift_min_labels,
            "enough_inferences": enough,
        },
    }
    return out


async def _test_splits(
    conn: AsyncConnection, model_ids: Iterable[int]
) -> dict[int, list[tuple[float, str]]]:
    """Each model's test split as (top weight, predicted label), for many models in one
    query (not two queries per plot type: a pass over ePIC's 568 cost 2 s CPU)."""
    classes = await conn.execute(sa.select(Classification.id, Classification.name))
    names: dict[int, str] = dict(classes.tuples().all())
    ids = sorted(set(model_ids))
    out: dict[int, list[tuple[float, str]]] = {m: [] for m in ids}
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            sa.select(
                ModelEvaluation.model_id,
                ModelEvaluation.predicted_classification_id,
                ModelEvaluation.weights,
            ).where(
                ModelEvaluation.model_id.in_(ids[start : start + 500]),
                ModelEvaluation.split == Split.TEST,
            )
        )
        for model_id, pred_id, weights in rows.tuples():
            values = [float(v) for v in (weights or {}).values() if isinstance(v, int | float)]
            if values:
                out[model_id].append((max(values), names.get(pred_id, "?")))
    return out


run_history_t = RunHistory.__table__
CHUNK = 32  # plot types measured together: bounded memory (windows of MAX_WINDOW rows at most)


@functools.cache
def _windows_statement(size: int, limit: int) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """The windows of ``size`` plot types, with bound parameters ``p<i>``, ``m<i>`` (plot
    type and model) and ``since``: built once per size, as building 32 parts anew took
    more CPU than the database took to answer them."""
    rh = run_history_t.c
    parts = [
        sa.select(
            sa.select(rh.plot_type_id, rh.confidence, rh.verdict, rh.order_id)
            .where(
                rh.plot_type_id == sa.bindparam(f"p{i}"),
                rh.created_at >= sa.bindparam("since"),
                rh.model_id == sa.bindparam(f"m{i}"),
                rh.status == InferenceStatus.OK,
            )
            .order_by(rh.created_at.desc())
            .limit(limit)
            .subquery()
        )
        for i in range(size)
    ]
    return parts[0] if size == 1 else sa.union_all(*parts)


async def _windows(
    conn: AsyncConnection, chunk: Sequence[tuple[int, int]], since: datetime
) -> dict[int, list[tuple[float, str, str]]]:
    """The trailing windows of a few (plot type id, model id) pairs in ONE statement.

    Each plot type's newest ``MAX_WINDOW`` inferences of its model since ``since`` (each
    part of the ``UNION ALL`` is its own ``ORDER BY ... LIMIT`` on the plot type's index,
    as one query per plot type would be): one round trip per chunk instead of one per plot
    type (a pass over ePIC's 568 plot types sent 568 of them, most of an idle keeper's CPU).
    Each part is wrapped in a subquery, as SQLite allows no LIMIT in a compound's parts.
    """
    out: dict[int, list[tuple[float, str, str]]] = {p: [] for p, _ in chunk}
    if not chunk:
        return out
    params: dict[str, Any] = {"since": since}
    for i, (plot_type_id, model_id) in enumerate(chunk):
        params[f"p{i}"], params[f"m{i}"] = plot_type_id, model_id
    stmt = _windows_statement(len(chunk), MAX_WINDOW)
    for pt, c, v, o in (await conn.execute(stmt, params)).tuples():
        out[int(pt)].append((float(c), str(v), str(o)))
    return out


async def _agreements(
    conn: AsyncConnection, windows: Mapping[int, Mapping[str, str]]
) -> dict[int, list[bool]]:
    """Per plot type, for each window image (order id -> verdict) an expert has labelled:
    whether the label is the verdict. One query per 500 labelled-or-not images of all
    plot types together."""
    owner = {
        oid: (pt, verdict) for pt, verdicts in windows.items() for oid, verdict in verdicts.items()
    }
    out: dict[int, list[bool]] = {pt: [] for pt in windows}
    ids = list(owner)
    for start in range(0, len(ids), 500):
        rows = await conn.execute(
            sa.select(Plot.order_id, Plot.plot_type_id, Classification.name)
            .join(Label, Label.plot_id == Plot.id)
            .join(Classification, Classification.id == Label.classification_id)
            .where(Plot.order_id.in_(ids[start : start + 500]))
        )
        for oid, pt, name in rows.tuples():
            found = owner.get(str(oid))
            if found is not None and found[0] == pt:
                out[pt].append(found[1] == name)
    return out


class DriftMonitor:
    """Measures every plot type's drift, stores it, exports it (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: DriftSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = DriftMetrics(registry if registry is not None else CollectorRegistry())

    async def measure(self, now: datetime | None = None) -> list[DriftFigures]:
        """One pass over every plot type with an active model; returns what it stored."""
        now = now or utcnow()
        hours = self.settings.drift_window_hours
        since = now - timedelta(hours=hours)
        figures: list[DriftFigures] = []
        async with self.engine.begin() as conn:
            active = (
                await conn.execute(
                    sa.select(PlotType.id, PlotType.name, PlotType.active_model_id).where(
                        PlotType.active_model_id.is_not(None)
                    )
                )
            ).tuples()
            plot_types = [(p, n, m) for p, n, m in active if m is not None]
            # A few plot types at a time: bounded memory (windows of 5,000 rows at most).
            for start in range(0, len(plot_types), CHUNK):
                chunk = plot_types[start : start + CHUNK]
                tests = await _test_splits(conn, [m for _, _, m in chunk])
                windows = await _windows(conn, [(p, m) for p, _, m in chunk], since)
                agreements = await _agreements(
                    conn, {p: {o: v for _, v, o in w} for p, w in windows.items()}
                )
                for pt_id, name, model_id in chunk:
                    window, test = windows[pt_id], tests[model_id]
                    found = compare(
                        self.settings, [(w, v) for w, v, _ in window], test, agreements[pt_id]
                    )
                    figures.append(
                        DriftFigures(pt_id, name, model_id, hours, len(window), len(test), **found)
                    )
            measured = [f.plot_type_id for f in figures]
            await conn.execute(
                sa.delete(model_drift_t).where(model_drift_t.c.plot_type_id.not_in(measured))
            )
            await upsert(conn, model_drift_t, [f.row(now) for f in figures], ["plot_type_id"])
        self.metrics.show(figures)
        return figures

    async def run_forever(self) -> None:
        """A pass every interval until cancelled, the first a minute after start (a keeper
        started for a moment, a test, measures nothing); a failed pass is logged and tried
        again at the next interval."""
        interval = self.settings.drift_interval_seconds
        await every(interval, FIRST_PASS_DELAY_SECONDS, self._pass, _pass_failed)

    async def _pass(self) -> None:
        figures = await self.measure()
        suggested = [f.plot_type for f in figures if f.retrain_suggested]
        log.info(
            "drift measured",
            extra={"plot_types": len(figures), "retrain_suggested": suggested[:20]},
        )


def _pass_failed(exc: Exception) -> None:
    log.warning("drift pass failed", extra={"error": repr(exc)[:500]})
