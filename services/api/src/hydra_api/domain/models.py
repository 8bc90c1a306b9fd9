"""The model library: models per plot type, thresholds, the enhanced confusion matrix,
promotion (through ``hydra_common.lifecycle``) and the training report."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, audit, file_url
from hydra_api.domain.queries import count, newest_of_plot_type
from hydra_api.models import (
    ConfusionCell,
    ConfusionMatrix,
    ModelDetail,
    ModelOut,
    Page,
    ReportEntry,
    ReportResponseOut,
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

BINS = 20


def to_model_out(m: Model, plot_type: PlotType) -> ModelOut:
    """The list view of a model of this plot type."""
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
    return to_model_out(m, pt)


async def get_model(session: AsyncSession, model_id: int) -> tuple[Model, PlotType]:
    """A model and its plot type; NotFound when there is no such model."""
    m = await lifecycle.get_model(session, model_id)
    pt = await session.get(PlotType, m.plot_type_id)
    assert pt is not None
    return m, pt


async def label_names(session: AsyncSession) -> dict[int, str]:
    """Label id -> name."""
    return dict(
        (await session.execute(sa.select(Classification.id, Classification.name))).tuples().all()
    )


async def list_models(
    session: AsyncSession,
    page: Pagination,
    plot_type: str | None = None,
    status: ModelStatus | None = None,
) -> Page[ModelOut]:
    """Models (of a plot type, in a status), newest first."""
    stmt = sa.select(Model, PlotType).join(PlotType, PlotType.id == Model.plot_type_id)
    columns = (Model.plot_type_id, Model.status, Model.id)
    return await newest_of_plot_type(
        session, stmt, columns, plot_type, status, page, lambda row: to_model_out(*row)
    )


async def thresholds(session: AsyncSession, model_id: int) -> list[ThresholdOut]:
    """The model's per-label thresholds, in label order."""
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


async def _training_set(session: AsyncSession, training_set_id: int) -> TrainingSetOut | None:
    ts = await session.get(TrainingSet, training_set_id)
    if ts is None:
        return None
    size = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(TrainingSetImage.copies), 0)).where(
            TrainingSetImage.training_set_id == ts.id
        )
    )
    return TrainingSetOut(
        id=ts.id,
        sampling_method=ts.sampling_method,
        size=int(size or 0),
        class_counts=ts.class_counts or {},
        dropped_classes=ts.dropped_classes or {},
        created_by=ts.created_by,
        created_at=ts.created_at,
    )


async def model_detail(session: AsyncSession, model_id: int) -> ModelDetail:
    """A model with its training set (size, sampling), labels, metrics and thresholds."""
    m, pt = await get_model(session, model_id)
    training_set = None
    if m.training_set_id is not None:
        training_set = await _training_set(session, m.training_set_id)
    return ModelDetail(
        **to_model_out(m, pt).model_dump(),
        label_order=[str(x) for x in m.label_order or []],
        hyperparameters=m.hyperparameters or {},
        framework_versions=m.framework_versions or {},
        parent_model_id=m.parent_model_id,
        location=m.location,
        input_height=m.input_height,
        input_width=m.input_width,
        input_channels=m.input_channels,
        training_set=training_set,
        thresholds=await thresholds(session, m.id),
    )


async def confusion(session: AsyncSession, model_id: int, split: Split) -> ConfusionMatrix:
    """The enhanced confusion matrix: per (true, predicted) cell, the count and a histogram
    of the predicted label's weight in 20 bins."""
    m, _pt = await get_model(session, model_id)
    names = await label_names(session)
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


async def promote(session: AsyncSession, m: Model, pt: PlotType, by: str) -> ModelOut:
    """Make the model the one its plot type serves (the life cycle's rule), and commit."""
    await lifecycle.promote(session, m.id, by)
    await session.commit()
    return to_model_out(m, pt)


async def set_threshold(
    session: AsyncSession, model_id: int, label: str, value: float, by: str
) -> ThresholdOut:
    """Set a label's threshold by hand (the life cycle's rule), and commit."""
    t = await lifecycle.set_threshold(session, model_id, label, value, by)
    await session.commit()
    return ThresholdOut(
        label=label, threshold=t.threshold, method=t.method, set_by=t.set_by, set_at=t.set_at
    )


async def _responses(
    session: AsyncSession, report_ids: list[int]
) -> dict[int, list[ReportResponseOut]]:
    responses: dict[int, list[ReportResponseOut]] = defaultdict(list)
    if not report_ids:
        return responses
    rows = await session.execute(
        sa.select(TrainingReportResponse, User.username)
        .outerjoin(User, User.id == TrainingReportResponse.user_id)
        .where(TrainingReportResponse.training_report_id.in_(report_ids))
        .order_by(TrainingReportResponse.id)
    )
    for resp, username in rows.tuples():
        responses[resp.training_report_id].append(
            ReportResponseOut(response=resp.response, username=username, created_at=resp.created_at)
        )
    return responses


async def report(
    session: AsyncSession, model_id: int, page: Pagination, open_only: bool = False
) -> Page[ReportEntry]:
    """Images where the model and the humans disagree, with both opinions (only those nobody
    answered yet, with ``open_only``), the model's most confident first."""
    m, _pt = await get_model(session, model_id)
    names = await label_names(session)
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
    responses = await _responses(session, [r.id for r, _, _ in rows])
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


async def report_entry(session: AsyncSession, report_id: int) -> tuple[TrainingReport, Model]:
    """A training-report entry and its model; NotFound when there is none."""
    entry = await session.get(TrainingReport, report_id)
    if entry is None:
        raise NotFound(f"no training report entry {report_id}")
    m, _pt = await get_model(session, entry.model_id)
    return entry, m


async def respond(
    session: AsyncSession, entry: TrainingReport, user: User, response: str
) -> ReportResponseOut:
    """Record (and audit) an expert's decision about a disagreement, and commit."""
    resp = TrainingReportResponse(training_report_id=entry.id, user_id=user.id, response=response)
    session.add(resp)
    audit(
        session,
        user,
        "respond",
        "training_report",
        entry.id,
        after={"response": response, "model_id": entry.model_id},
    )
    await session.commit()
    return ReportResponseOut(
        response=resp.response, username=user.username, created_at=resp.created_at
    )
