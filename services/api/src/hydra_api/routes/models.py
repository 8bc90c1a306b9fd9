"""The model library: models per plot type, thresholds, enhanced confusion matrix, promotion,
and the training report (where the model and the humans disagree)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hydra_api.common import PageDep
from hydra_api.deps import CurrentUser, Reader, SessionDep
from hydra_api.domain import models
from hydra_api.domain.permissions import check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import (
    ConfusionMatrix,
    ModelDetail,
    ModelOut,
    Page,
    ReportEntry,
    ReportResponseIn,
    ReportResponseOut,
    ThresholdIn,
    ThresholdOut,
)
from hydra_common.db.schema import ModelStatus, Split

router = APIRouter(tags=["models"])


@router.get("/api/models", response_model=Page[ModelOut])
async def list_models(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    status: ModelStatus | None = None,
) -> Page[ModelOut]:
    """Models, newest first; ``active`` marks the one each plot type serves."""
    return await models.list_models(session, page, plot_type, status)


@router.get("/api/models/{model_id}", response_model=ModelDetail)
async def get_model(model_id: Id, session: SessionDep, _reader: Reader) -> ModelDetail:
    """A model with its training set (size, sampling), labels, metrics and thresholds."""
    return await models.model_detail(session, model_id)


@router.get("/api/models/{model_id}/confusion", response_model=ConfusionMatrix)
async def get_confusion(
    model_id: Id, session: SessionDep, _reader: Reader, split: Split = Split.TEST
) -> ConfusionMatrix:
    """The enhanced confusion matrix: per (true, predicted) cell, the count and a histogram
    of the predicted label's weight in 20 bins."""
    return await models.confusion(session, model_id, split)


@router.post("/api/models/{model_id}/promote", response_model=ModelOut)
async def promote_model(model_id: Id, session: SessionDep, user: CurrentUser) -> ModelOut:
    """Make this model the one its plot type serves (the predictor picks it up)."""
    m, pt = await models.get_model(session, model_id)
    await check_model_editing(session, user, pt.id)
    return await models.promote(session, m, pt, user.username)


@router.get("/api/models/{model_id}/thresholds", response_model=Page[ThresholdOut])
async def list_thresholds(model_id: Id, session: SessionDep, _reader: Reader) -> Page[ThresholdOut]:
    """The model's per-label thresholds."""
    m, _pt = await models.get_model(session, model_id)
    items = await models.thresholds(session, m.id)
    return Page(items=items, total=len(items))


@router.put("/api/models/{model_id}/thresholds/{label}", response_model=ThresholdOut)
async def set_threshold(
    model_id: Id,
    label: Annotated[str, Path(max_length=32)],
    body: ThresholdIn,
    session: SessionDep,
    user: CurrentUser,
) -> ThresholdOut:
    """Set a label's threshold by hand (method ``manual``, recorded with who set it)."""
    _m, pt = await models.get_model(session, model_id)
    await check_model_editing(session, user, pt.id)
    return await models.set_threshold(session, model_id, label, body.value, user.username)


@router.get("/api/models/{model_id}/report", response_model=Page[ReportEntry])
async def get_report(
    model_id: Id,
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    open_only: Annotated[bool, Query(description="Only entries nobody answered yet.")] = False,
) -> Page[ReportEntry]:
    """Images where the model and the humans disagree, with both opinions."""
    return await models.report(session, model_id, page, open_only)


reports_router = APIRouter(tags=["training-reports"])


@reports_router.post(
    "/api/training-reports/{report_id}/response",
    response_model=ReportResponseOut,
    status_code=201,
)
async def respond_to_report(
    report_id: Id, body: ReportResponseIn, session: SessionDep, user: CurrentUser
) -> ReportResponseOut:
    """Record an expert's decision about a disagreement."""
    entry, m = await models.report_entry(session, report_id)
    await check_model_editing(session, user, m.plot_type_id)
    return await models.respond(session, entry, user, body.response)
