"""Model drift per plot type, as the keeper's drift loop last measured it (``model_drift``).

The keeper compares each active model's top weights and verdict mix over a trailing window
with its test split (PSI) and with the labels experts gave since; see ``hydra_keeper.drift``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hydra_api.common import PageDep
from hydra_api.deps import Reader, SessionDep
from hydra_api.domain.drift import drift_rows
from hydra_api.models import Page

router = APIRouter(tags=["drift"])


class DriftOut(BaseModel):
    """A plot type's drift: figures, whether retraining is suggested, and the evidence."""

    plot_type: str
    plot_type_id: int
    detector: str
    model_id: int | None
    model_name: str | None
    model_version: int | None
    window_hours: float
    inferences: int = Field(description="The active model's inferences in the window.")
    test_images: int = Field(description="Images of the model's test split compared with.")
    psi_top_weight: float | None = Field(description="PSI of the top weight's distribution.")
    psi_verdicts: float | None = Field(description="PSI of the verdict mix.")
    drift_score: float | None = Field(
        description="The larger PSI (None until the window holds enough inferences)."
    )
    labelled: int = Field(description="Window images experts have labelled since.")
    label_agreement: float | None = Field(
        description="Share of those whose label is the model's verdict."
    )
    retrain_suggested: bool
    evidence: dict[str, Any] = Field(
        description=(
            "statistic, reasons, bin_edges, top_weight_live / _test (counts per bin), "
            "verdicts_live / _test (counts per label), the thresholds used."
        )
    )
    computed_at: datetime


@router.get("/api/drift", response_model=Page[DriftOut])
async def list_drift(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="One plot type.")] = None,
    retrain_suggested: Annotated[
        bool | None, Query(description="Only plot types where retraining is (not) suggested.")
    ] = None,
) -> Page[DriftOut]:
    """Drift of every plot type with an active model: retraining suggested first, then the
    largest drift score."""
    rows, total = await drift_rows(session, page, plot_type, retrain_suggested)
    items = [
        DriftOut(
            plot_type=name,
            plot_type_id=d.plot_type_id,
            detector=detector,
            model_id=d.model_id,
            model_name=model_name,
            model_version=version,
            window_hours=d.window_hours,
            inferences=d.inferences,
            test_images=d.test_images,
            psi_top_weight=d.psi_top_weight,
            psi_verdicts=d.psi_verdicts,
            drift_score=d.drift_score,
            labelled=d.labelled,
            label_agreement=d.label_agreement,
            retrain_suggested=d.retrain_suggested,
            evidence=d.evidence or {},
            computed_at=d.computed_at,
        )
        for d, name, detector, model_name, version in rows
    ]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))
