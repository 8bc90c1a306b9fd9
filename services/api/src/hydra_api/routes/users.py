"""Users, roles and per-plot-type labelling permissions (admin only), and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hydra_api.common import PageDep
from hydra_api.deps import AdminUser, SessionDep
from hydra_api.domain import users
from hydra_api.inputs import INT32_MAX, Id, TextQuery, UtcDatetime
from hydra_api.models import (
    MAX_LIMIT,
    AuditPage,
    Page,
    PermissionsIn,
    UserCreate,
    UserOut,
    UserUpdate,
)

router = APIRouter(tags=["users"])


@router.get("/api/users", response_model=Page[UserOut])
async def list_users(session: SessionDep, page: PageDep, _admin: AdminUser) -> Page[UserOut]:
    """Every user, by name."""
    return await users.list_users(session, page)


@router.post("/api/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> UserOut:
    """Create a local user."""
    return await users.create_user(session, body, admin)


@router.patch("/api/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: Id, body: UserUpdate, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Change a user's role, name, password or whether they may log in."""
    return await users.update_user(session, user_id, body, admin)


@router.put("/api/users/{user_id}/permissions", response_model=UserOut)
async def set_permissions(
    user_id: Id, body: PermissionsIn, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Set the plot types the user may label (replaces the previous set)."""
    return await users.set_permissions(session, user_id, body.plot_types, admin)


@router.put("/api/users/{user_id}/permissions/{plot_type_id}", response_model=UserOut)
async def grant_permission(
    user_id: Id, plot_type_id: Id, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Let the user label one more plot type (nothing changes when they already may)."""
    return await users.grant_or_revoke(session, admin, user_id, plot_type_id, grant=True)


@router.delete("/api/users/{user_id}/permissions/{plot_type_id}", response_model=UserOut)
async def revoke_permission(
    user_id: Id, plot_type_id: Id, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Stop the user labelling one plot type (nothing changes when they could not)."""
    return await users.grant_or_revoke(session, admin, user_id, plot_type_id, grant=False)


@router.get("/api/audit", response_model=AuditPage)
async def list_audit(
    session: SessionDep,
    _admin: AdminUser,
    entity: Annotated[
        str | None, Query(max_length=64, description="Only changes of this kind of thing.")
    ] = None,
    entity_id: Annotated[
        str | None, Query(max_length=64, description="Only changes of this one thing.")
    ] = None,
    username: Annotated[str | None, Query(max_length=64, description="Only this user's.")] = None,
    action: TextQuery = None,
    since: Annotated[UtcDatetime | None, Query(description="At or after (UTC).")] = None,
    until: Annotated[UtcDatetime | None, Query(description="Before (UTC).")] = None,
    before_id: Annotated[
        int | None,
        Query(ge=1, le=INT32_MAX, description="Keyset cursor: entries older than this id."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 100,
) -> AuditPage:
    """Recorded changes, newest first, filtered; page on with ``before_id`` =
    ``next_before_id`` (a keyset: no count, no offset, as fast on page 1000 as on page 1)."""
    return await users.audit_page(
        session,
        limit,
        entity=entity,
        entity_id=entity_id,
        username=username,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
    )
