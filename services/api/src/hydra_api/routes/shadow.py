"""Shadow evaluation of a candidate model: start, stop, and its figures.

The rules (one shadow per plot type, the promotion rule) live in ``hydra_common.lifecycle``;
the figures in ``hydra_common.shadow``. Promotion itself is ``POST /api/models/{id}/promote``.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import file_url
from hydra_api.deps import CurrentUser, Reader, SessionDep, check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import ShadowDisagreement, ShadowIn, ShadowOut
from hydra_common import lifecycle, shadow
from hydra_common.db.schema import ModelShadow, PlotType

router = APIRouter(tags=["models"])
DISAGREEMENTS_SHOWN = 24


async def _shadow_out(session: AsyncSession, model_id: int) -> ShadowOut:
    model = await lifecycle.get_model(session, model_id)
    pt = await session.get(PlotType, model.plot_type_id, populate_existing=True)
    assert pt is not None
    running = await lifecycle.shadow_of(session, model.id)
    figures = await shadow.figures(session, model.id)
    rule = running or ModelShadow(plot_type_id=pt.id, model_id=model.id)
    problem = lifecycle.rule_problem(rule, figures)
    shown = await shadow.disagreements(session, model.id, DISAGREEMENTS_SHOWN)
    return ShadowOut(
        model_id=model.id,
        plot_type=pt.name,
        active_model_id=pt.active_model_id,
        in_shadow=running is not None,
        started_by=running.started_by if running else None,
        started_at=running.started_at if running else None,
        min_images=running.min_images if running else None,
        min_agreement=running.min_agreement if running else None,
        images=figures.images,
        errors=figures.errors,
        compared=figures.compared,
        agreements=figures.agreements,
        agreement=figures.agreement,
        labelled=figures.labelled,
        label_agreement=figures.label_agreement,
        active_label_agreement=figures.active_label_agreement,
        seconds_per_image=figures.seconds_per_image,
        active_seconds_per_image=figures.active_seconds_per_image,
        first_at=figures.first_at,
        last_at=figures.last_at,
        promotable=model.status in lifecycle.PROMOTABLE
        and pt.active_model_id != model.id
        and not problem,
        rule_problem=problem,
        disagreements=[
            ShadowDisagreement(
                order_id=h.order_id,
                run_number=h.run_number,
                chunk=h.chunk,
                shadow_verdict=h.verdict,
                shadow_confidence=h.confidence,
                active_verdict=h.active_verdict,
                human_label=label,
                image_url=file_url(h.image_path),
                created_at=h.created_at,
            )
            for h, label in shown
        ],
    )


@router.get("/api/models/{model_id}/shadow", response_model=ShadowOut)
async def get_shadow(model_id: Id, session: SessionDep, _reader: Reader) -> ShadowOut:
    """The model's shadow figures: agreement with the active model and with expert labels,
    cost per image, the latest disagreements, and whether its promotion rule holds."""
    return await _shadow_out(session, model_id)


@router.post("/api/models/{model_id}/shadow", response_model=ShadowOut, status_code=201)
async def start_shadow(
    model_id: Id, body: ShadowIn, session: SessionDep, user: CurrentUser
) -> ShadowOut:
    """Run the model in shadow beside its plot type's active model (the predictors pick it
    up); an optional rule gates its promotion. One shadow model per plot type."""
    model = await lifecycle.get_model(session, model_id)
    await check_model_editing(session, user, model.plot_type_id)
    await lifecycle.start_shadow(
        session,
        model.id,
        user.username,
        min_images=body.min_images,
        min_agreement=body.min_agreement,
    )
    await session.commit()
    return await _shadow_out(session, model.id)


@router.delete("/api/models/{model_id}/shadow", response_model=ShadowOut)
async def stop_shadow(model_id: Id, session: SessionDep, user: CurrentUser) -> ShadowOut:
    """Stop running the model in shadow; its recorded verdicts and figures stay."""
    model = await lifecycle.get_model(session, model_id)
    await check_model_editing(session, user, model.plot_type_id)
    await lifecycle.stop_shadow(session, model.id, user.username)
    await session.commit()
    return await _shadow_out(session, model.id)
