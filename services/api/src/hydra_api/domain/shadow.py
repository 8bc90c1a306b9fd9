"""Shadow evaluation of a candidate model as the API shows it: its figures, the latest
disagreements, and whether it may be promoted; starting and stopping it (the rules:
``hydra_common.lifecycle``; the figures: ``hydra_common.shadow``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import file_url
from hydra_api.models import ShadowDisagreement, ShadowOut
from hydra_common import lifecycle, shadow
from hydra_common.db.schema import ModelShadow, PlotType

DISAGREEMENTS_SHOWN = 24


async def shadow_out(session: AsyncSession, model_id: int) -> ShadowOut:
    """The model's shadow figures, its latest disagreements, and whether its promotion rule
    holds (it may be promoted: promotable, not already active, and the rule met)."""
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


async def start(
    session: AsyncSession,
    model_id: int,
    by: str,
    min_images: int | None = None,
    min_agreement: float | None = None,
) -> ShadowOut:
    """Run the model in shadow (one per plot type, with an optional promotion rule), and
    commit."""
    await lifecycle.start_shadow(
        session, model_id, by, min_images=min_images, min_agreement=min_agreement
    )
    await session.commit()
    return await shadow_out(session, model_id)


async def stop(session: AsyncSession, model_id: int, by: str) -> ShadowOut:
    """Stop running the model in shadow (its verdicts and figures stay), and commit."""
    await lifecycle.stop_shadow(session, model_id, by)
    await session.commit()
    return await shadow_out(session, model_id)
