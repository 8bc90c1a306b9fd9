"""The model library: models per plot type, thresholds, enhanced confusion matrix, promotion,
and the training report (where the model and the humans disagree)."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, audit, count, file_url, plot_type_by_name
from hydra_api.deps import CurrentUser, Reader, SessionDep, check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import (
    ConfusionCell,
    ConfusionMatrix,
    ModelDetail,
    ModelOut,
    Page,
    ReportEntry,
    ReportResponseIn,
    ReportResponseOut,
    ThresholdIn,
    ThresholdOut,
    TrainingSetOut,
)
from hydra_common import lifecycle
from hydra_common.db.schema import (
    Classification,
    Label,
    Model,
    ModelEvaluation,
    ModelStatus,
    Plot,
    PlotType,
    Split,
    Threshold,
    TrainingReport,
    TrainingReportResponse,
    TrainingSet,
    TrainingSetImage,
    User,
)
from hydra_common.errors import NotFound

router = APIRouter(tags=["models"])
BINS = 20


def _model_out(m: Model, plot_type: PlotType) -> ModelOut:
    return ModelOut(
        id=m.id,
        plot_type=plot_type.name,
        plot_type_id=m.plot_type_id,
        name=m.name,
        version=m.version,
        architecture=m.architecture,
        status=m.status,
        active=plot_type.active_model_id == m.id,
        sampling_method=m.sampling_method,
        epochs_run=m.epochs_run,
        trained_by=m.trained_by,
        signed_off_by=m.signed_off_by,
        created_at=m.created_at,
        promoted_at=m.promoted_at,
        metrics=m.metrics or {},
    )


async def model_out(session: AsyncSession, m: Model) -> ModelOut:
    """The list view of a model."""
    pt = await session.get(PlotType, m.plot_type_id)
    assert pt is not None
    return _model_out(m, pt)


async def _get_model(session: AsyncSession, model_id: int) -> tuple[Model, PlotType]:
    m = await session.get(Model, model_id)
    if m is None:
        raise NotFound(f"no model {model_id}")
    pt = await session.get(PlotType, m.plot_type_id)
    assert pt is not None
    return m, pt


async def _label_names(session: AsyncSession) -> dict[int, str]:
    return dict(
        (await session.execute(sa.select(Classification.id, Classification.name))).tuples().all()
    )


@router.get("/api/models", response_model=Page[ModelOut])
async def list_models(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    plot_type: Annotated[str | None, Query(max_length=128, description="Plot type name.")] = None,
    status: ModelStatus | None = None,
) -> Page[ModelOut]:
    """Models, newest first; ``active`` marks the one each plot type serves."""
    stmt = sa.select(Model, PlotType).join(PlotType, PlotType.id == Model.plot_type_id)
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        stmt = stmt.where(Model.plot_type_id == pt.id)
    if status is not None:
        stmt = stmt.where(Model.status == status)
    total = await count(session, stmt)
    rows = (
        await session.execute(stmt.order_by(Model.id.desc()).limit(page.limit).offset(page.offset))
    ).tuples()
    items = [_model_out(m, pt) for m, pt in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def _thresholds(session: AsyncSession, model_id: int) -> list[ThresholdOut]:
    rows = await session.execute(
        sa.select(Threshold, Classification.name)
        .join(Classification, Classification.id == Threshold.classification_id)
        .where(Threshold.model_id == model_id)
        .order_by(Classification.id)
    )
    return [
        ThresholdOut(
            label=name, threshold=t.threshold, method=t.method, set_by=t.set_by, set_at=t.set_at
        )
        for t, name in rows.tuples()
    ]


@router.get("/api/models/{model_id}", response_model=ModelDetail)
async def get_model(model_id: Id, session: SessionDep, _reader: Reader) -> ModelDetail:
    """A model with its training set (size, sampling), labels, metrics and thresholds."""
    m, pt = await _get_model(session, model_id)
    training_set = None
    if m.training_set_id is not None:
        ts = await session.get(TrainingSet, m.training_set_id)
        if ts is not None:
            size = await session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(TrainingSetImage.copies), 0)).where(
                    TrainingSetImage.training_set_id == ts.id
                )
            )
            training_set = TrainingSetOut(
                id=ts.id,
                sampling_method=ts.sampling_method,
                size=int(size or 0),
                class_counts=ts.class_counts or {},
                dropped_classes=ts.dropped_classes or {},
                created_by=ts.created_by,
                created_at=ts.created_at,
            )
    return ModelDetail(
        **_model_out(m, pt).model_dump(),
        label_order=[str(x) for x in m.label_order or []],
        hyperparameters=m.hyperparameters or {},
        framework_versions=m.framework_versions or {},
        parent_model_id=m.parent_model_id,
        location=m.location,
        input_height=m.input_height,
        input_width=m.input_width,
        input_channels=m.input_channels,
        training_set=training_set,
        thresholds=await _thresholds(session, m.id),
    )


@router.get("/api/models/{model_id}/confusion", response_model=ConfusionMatrix)
async def get_confusion(
    model_id: Id, session: SessionDep, _reader: Reader, split: Split = Split.TEST
) -> ConfusionMatrix:
    """The enhanced confusion matrix: per (true, predicted) cell, the count and a histogram
    of the predicted label's weight in 20 bins."""
    m, _pt = await _get_model(session, model_id)
    names = await _label_names(session)
    rows = await session.execute(
        sa.select(
            ModelEvaluation.true_classification_id,
            ModelEvaluation.predicted_classification_id,
            ModelEvaluation.weights,
        ).where(ModelEvaluation.model_id == m.id, ModelEvaluation.split == split)
    )
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * BINS)
    total = 0
    for true_id, pred_id, weights in rows.tuples():
        true_name, pred_name = names.get(true_id, "?"), names.get(pred_id, "?")
        weight = float((weights or {}).get(pred_name, 0.0))
        cells[(true_name, pred_name)][min(BINS - 1, max(0, int(weight * BINS)))] += 1
        total += 1
    labels = [str(x) for x in m.label_order or []]
    for t, p in cells:
        for name in (t, p):
            if name not in labels:
                labels.append(name)
    return ConfusionMatrix(
        model_id=m.id,
        split=split.value,
        labels=labels,
        bin_edges=[i / BINS for i in range(BINS + 1)],
        total=total,
        cells=[
            ConfusionCell(true_label=t, predicted_label=p, count=sum(h), histogram=h)
            for (t, p), h in sorted(
                cells.items(), key=lambda kv: (labels.index(kv[0][0]), labels.index(kv[0][1]))
            )
        ],
    )


@router.post("/api/models/{model_id}/promote", response_model=ModelOut)
async def promote_model(model_id: Id, session: SessionDep, user: CurrentUser) -> ModelOut:
    """Make this model the one its plot type serves (the predictor picks it up)."""
    m, pt = await _get_model(session, model_id)
    await check_model_editing(session, user, pt.id)
    await lifecycle.promote(session, m.id, user.username)
    await session.commit()
    return _model_out(m, pt)


@router.get("/api/models/{model_id}/thresholds", response_model=Page[ThresholdOut])
async def list_thresholds(model_id: Id, session: SessionDep, _reader: Reader) -> Page[ThresholdOut]:
    """The model's per-label thresholds."""
    m, _pt = await _get_model(session, model_id)
    items = await _thresholds(session, m.id)
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
    _m, pt = await _get_model(session, model_id)
    await check_model_editing(session, user, pt.id)
    t = await lifecycle.set_threshold(session, model_id, label, body.value, user.username)
    await session.commit()
    return ThresholdOut(
        label=label, threshold=t.threshold, method=t.method, set_by=t.set_by, set_at=t.set_at
    )


@router.get("/api/models/{model_id}/report", response_model=Page[ReportEntry])
async def get_report(
    model_id: Id,
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    open_only: Annotated[bool, Query(description="Only entries nobody answered yet.")] = False,
) -> Page[ReportEntry]:
    """Images where the model and the humans disagree, with both opinions."""
    m, _pt = await _get_model(session, model_id)
    names = await _label_names(session)
    stmt = (
        sa.select(TrainingReport, Plot, Label.classification_id)
        .join(Plot, Plot.id == TrainingReport.plot_id)
        .outerjoin(Label, Label.plot_id == Plot.id)
        .where(TrainingReport.model_id == m.id)
    )
    if open_only:
        answered = sa.select(TrainingReportResponse.training_report_id)
        stmt = stmt.where(TrainingReport.id.not_in(answered))
    total = await count(session, stmt)
    rows = (
        (
            await session.execute(
                stmt.order_by(TrainingReport.model_weight.desc(), TrainingReport.id)
                .limit(page.limit)
                .offset(page.offset)
            )
        )
        .tuples()
        .all()
    )
    report_ids = [r.id for r, _, _ in rows]
    responses: dict[int, list[ReportResponseOut]] = defaultdict(list)
    if report_ids:
        resp_rows = await session.execute(
            sa.select(TrainingReportResponse, User.username)
            .outerjoin(User, User.id == TrainingReportResponse.user_id)
            .where(TrainingReportResponse.training_report_id.in_(report_ids))
            .order_by(TrainingReportResponse.id)
        )
        for resp, username in resp_rows.tuples():
            responses[resp.training_report_id].append(
                ReportResponseOut(
                    response=resp.response, username=username, created_at=resp.created_at
                )
            )
    items = [
        ReportEntry(
            id=r.id,
            plot_id=plot.id,
            run_number=plot.run_number,
            chunk=plot.chunk,
            image_url=file_url(plot.image_path) or "",
            heatmap_url=file_url(plot.heatmap_path),
            human_label=names.get(r.human_classification_id, "?"),
            model_label=names.get(r.model_classification_id, "?"),
            model_weight=r.model_weight,
            current_label=names.get(current) if current is not None else None,
            responses=responses[r.id],
        )
        for r, plot, current in rows
    ]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


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
    report = await session.get(TrainingReport, report_id)
    if report is None:
        raise NotFound(f"no training report entry {report_id}")
    m, pt = await _get_model(session, report.model_id)
    await check_model_editing(session, user, pt.id)
    resp = TrainingReportResponse(
        training_report_id=report.id, user_id=user.id, response=body.response
    )
    session.add(resp)
    audit(
        session,
        user,
        "respond",
        "training_report",
        report.id,
        after={"response": body.response, "model_id": m.id},
    )
    await session.commit()
    return ReportResponseOut(
        response=resp.response, username=user.username, created_at=resp.created_at
    )
