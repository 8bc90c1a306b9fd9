"""Plot types: their settings, valid labels, training defaults, and rolling a plot type back
to its previous model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hydra_api.common import PageDep
from hydra_api.deps import AdminUser, CurrentUser, Reader, SessionDep
from hydra_api.domain import plot_types
from hydra_api.domain.permissions import check_model_editing
from hydra_api.domain.queries import plot_type_by_id
from hydra_api.inputs import Id
from hydra_api.models import ModelOut, Page, PlotTypeLabelsIn, PlotTypeOut, PlotTypeUpdate

router = APIRouter(tags=["plot-types"])
CLEARABLE = frozenset({"default_architecture", "default_sampling"})


@router.get("/api/plot-types", response_model=Page[PlotTypeOut])
async def list_plot_types(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    detector: Annotated[str | None, Query(max_length=64)] = None,
    ignored: Annotated[bool | None, Query(description="Filter on the ignored flag.")] = None,
    name: Annotated[
        str | None, Query(max_length=128, description="Name contains this text.")
    ] = None,
) -> Page[PlotTypeOut]:
    """Plot types by detector and name, with counts of kept and labelled images."""
    return await plot_types.list_plot_types(session, page, detector, ignored, name)


@router.get("/api/plot-types/{plot_type_id}", response_model=PlotTypeOut)
async def get_plot_type(plot_type_id: Id, session: SessionDep, _reader: Reader) -> PlotTypeOut:
    """One plot type."""
    return await plot_types.get_plot_type(session, plot_type_id)


@router.patch("/api/plot-types/{plot_type_id}", response_model=PlotTypeOut)
async def update_plot_type(
    plot_type_id: Id, body: PlotTypeUpdate, session: SessionDep, admin: AdminUser
) -> PlotTypeOut:
    """Change a plot type's collect percentage, ignored flag, detector or training defaults
    (a null default means Hydra's)."""
    fields = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k in CLEARABLE
    }
    return await plot_types.update_plot_type(session, plot_type_id, fields, admin)


@router.put("/api/plot-types/{plot_type_id}/labels", response_model=PlotTypeOut)
async def set_plot_type_labels(
    plot_type_id: Id, body: PlotTypeLabelsIn, session: SessionDep, admin: AdminUser
) -> PlotTypeOut:
    """Set the plot type's valid labels (existing labels; 409 for removing one that images of
    the plot type carry)."""
    return await plot_types.set_labels(session, plot_type_id, body.labels, admin)


@router.post("/api/plot-types/{plot_type_id}/rollback", response_model=ModelOut)
async def rollback_plot_type(plot_type_id: Id, session: SessionDep, user: CurrentUser) -> ModelOut:
    """Serve the previously active model again: the current model's parent if it served
    before, else the retired model promoted most recently (409 when none served before)."""
    pt = await plot_type_by_id(session, plot_type_id)
    await check_model_editing(session, user, pt.id)
    return await plot_types.rollback(session, pt, user.username)
