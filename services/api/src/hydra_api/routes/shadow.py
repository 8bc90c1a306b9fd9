"""Shadow evaluation of a candidate model: start, stop, and its figures.

The rules (one shadow per plot type, the promotion rule) live in ``hydra_common.lifecycle``;
the figures in ``hydra_common.shadow``. Promotion itself is ``POST /api/models/{id}/promote``.
"""

from __future__ import annotations

from fastapi import APIRouter

from hydra_api.deps import CurrentUser, Reader, SessionDep
from hydra_api.domain import shadow
from hydra_api.domain.permissions import check_model_editing
from hydra_api.inputs import Id
from hydra_api.models import ShadowIn, ShadowOut
from hydra_common import lifecycle

router = APIRouter(tags=["models"])


@router.get("/api/models/{model_id}/shadow", response_model=ShadowOut)
async def get_shadow(model_id: Id, session: SessionDep, _reader: Reader) -> ShadowOut:
    """The model's shadow figures: agreement with the active model and with expert labels,
    cost per image, the latest disagreements, and whether its promotion rule holds."""
    return await shadow.shadow_out(session, model_id)


@router.post("/api/models/{model_id}/shadow", response_model=ShadowOut, status_code=201)
async def start_shadow(
    model_id: Id, body: ShadowIn, session: SessionDep, user: CurrentUser
) -> ShadowOut:
    """Run the model in shadow beside its plot type's active model (the predictors pick it
    up); an optional rule gates its promotion. One shadow model per plot type."""
    model = await lifecycle.get_model(session, model_id)
    await check_model_editing(session, user, model.plot_type_id)
    return await shadow.start(session, model.id, user.username, body.min_images, body.min_agreement)


@router.delete("/api/models/{model_id}/shadow", response_model=ShadowOut)
async def stop_shadow(model_id: Id, session: SessionDep, user: CurrentUser) -> ShadowOut:
    """Stop running the model in shadow; its recorded verdicts and figures stay."""
    model = await lifecycle.get_model(session, model_id)
    await check_model_editing(session, user, model.plot_type_id)
    return await shadow.stop(session, model.id, user.username)
