"""Users, roles and per-plot-type labelling permissions (admin only), and the audit log."""

from __future__ import annotations

import asyncio
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import PageDep, audit, count
from hydra_api.deps import AdminUser, SessionDep
from hydra_api.inputs import Id
from hydra_api.models import AuditEntry, Page, PermissionsIn, UserCreate, UserOut, UserUpdate
from hydra_api.security import hash_password
from hydra_common.db.schema import AuditLog, PlotType, User, UserPermission, utcnow
from hydra_common.errors import Conflict, InvalidInput, NotFound

router = APIRouter(tags=["users"])


async def permissions_of(session: AsyncSession, user_ids: list[int]) -> dict[int, list[str]]:
    """Plot-type names each user may label."""
    rows = await session.execute(
        sa.select(UserPermission.user_id, PlotType.name)
        .join(PlotType, PlotType.id == UserPermission.plot_type_id)
        .where(UserPermission.user_id.in_(user_ids))
        .order_by(PlotType.name)
    )
    result: dict[int, list[str]] = {uid: [] for uid in user_ids}
    for uid, name in rows.tuples():
        result[uid].append(name)
    return result


def to_user_out(user: User, permissions: list[str]) -> UserOut:
    """The public view of a user."""
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        active=user.active,
        has_password=bool(user.password_hash),
        created_at=user.created_at,
        permissions=permissions,
    )


async def user_out(session: AsyncSession, user: User) -> UserOut:
    """A user with their permissions."""
    return to_user_out(user, (await permissions_of(session, [user.id]))[user.id])


def _snapshot(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "active": user.active,
    }


async def _get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


@router.get("/api/users", response_model=Page[UserOut])
async def list_users(session: SessionDep, page: PageDep, _admin: AdminUser) -> Page[UserOut]:
    """Every user, by name."""
    stmt = sa.select(User)
    total = await count(session, stmt)
    users = list(
        await session.scalars(stmt.order_by(User.username).limit(page.limit).offset(page.offset))
    )
    perms = await permissions_of(session, [u.id for u in users])
    items = [to_user_out(u, perms[u.id]) for u in users]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


@router.post("/api/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, session: SessionDep, admin: AdminUser) -> UserOut:
    """Create a local user."""
    pw_hash = await asyncio.to_thread(hash_password, body.password) if body.password else None
    user = User(
        username=body.username,
        display_name=body.display_name or body.username,
        role=body.role,
        password_hash=pw_hash,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {body.username!r} exists") from exc
    audit(session, admin, "create", "user", user.id, after=_snapshot(user))
    await session.commit()
    return to_user_out(user, [])


@router.patch("/api/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: Id, body: UserUpdate, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Change a user's role, name, password or whether they may log in."""
    user = await _get_user(session, user_id)
    before = _snapshot(user)
    if user.id == admin.id and (body.role not in (None, admin.role) or body.active is False):
        raise InvalidInput("an admin cannot demote or disable themselves")
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        if user.active and not body.active:
            # Every session so far ends for good: enabling the user again needs a new login.
            user.sessions_valid_after = utcnow()
        user.active = body.active
    after = _snapshot(user)
    if body.password is not None:
        user.password_hash = await asyncio.to_thread(hash_password, body.password)
        after["password"] = "changed"
    audit(session, admin, "update", "user", user.id, before=before, after=after)
    await session.commit()
    return await user_out(session, user)


@router.put("/api/users/{user_id}/permissions", response_model=UserOut)
async def set_permissions(
    user_id: Id, body: PermissionsIn, session: SessionDep, admin: AdminUser
) -> UserOut:
    """Set the plot types the user may label (replaces the previous set)."""
    user = await _get_user(session, user_id)
    wanted = sorted(set(body.plot_types))
    ids: dict[str, int] = dict(
        (
            await session.execute(
                sa.select(PlotType.name, PlotType.id).where(PlotType.name.in_(wanted))
            )
        )
        .tuples()
        .all()
    )
    missing = [n for n in wanted if n not in ids]
    if missing:
        raise InvalidInput(f"unknown plot types: {', '.join(missing[:20])}")
    before = (await permissions_of(session, [user.id]))[user.id]
    await session.execute(sa.delete(UserPermission).where(UserPermission.user_id == user.id))
    session.add_all(UserPermission(user_id=user.id, plot_type_id=ids[n]) for n in wanted)
    audit(
        session,
        admin,
        "set_permissions",
        "user",
        user.id,
        before={"plot_types": before},
        after={"plot_types": wanted},
    )
    await session.commit()
    return to_user_out(user, wanted)


@router.get("/api/audit", response_model=Page[AuditEntry])
async def list_audit(
    session: SessionDep,
    page: PageDep,
    _admin: AdminUser,
    entity: Annotated[
        str | None, Query(max_length=64, description="Only changes of this kind of thing.")
    ] = None,
) -> Page[AuditEntry]:
    """Recorded changes, newest first."""
    stmt = sa.select(AuditLog)
    if entity is not None:
        stmt = stmt.where(AuditLog.entity == entity)
    total = await count(session, stmt)
    rows = await session.scalars(
        stmt.order_by(AuditLog.id.desc()).limit(page.limit).offset(page.offset)
    )
    items = [AuditEntry.model_validate(r) for r in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))
