"""Users, roles, per-plot-type labelling permissions, and the audit log."""

from __future__ import annotations

import asyncio
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api import accounts
from hydra_api.common import Pagination, audit
from hydra_api.domain.queries import count, plot_type_by_id
from hydra_api.models import (
    AuditEntry,
    AuditPage,
    Page,
    UserCreate,
    UserOut,
    UserUpdate,
)
from hydra_api.security import hash_password
from hydra_common.db.schema import AuditLog, PlotType, Role, User, UserPermission
from hydra_common.errors import Conflict, InvalidInput, NotFound
from hydra_common.logs import get_logger

log = get_logger(__name__)


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


async def get_user(session: AsyncSession, user_id: int) -> User:
    """The user with this id; NotFound otherwise."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


async def bootstrap_admin(session: AsyncSession, password: str) -> None:
    """Create the user ``admin`` with this password when no admin exists (the first start of
    a deployment); a user ``admin`` without the admin role is left alone."""
    if await session.scalar(sa.select(User.id).where(User.role == Role.ADMIN).limit(1)):
        return
    if await session.scalar(sa.select(User.id).where(User.username == "admin")):
        log.warning("user 'admin' exists without the admin role; not bootstrapping")
        return
    pw_hash = await asyncio.to_thread(hash_password, password)
    session.add(
        User(username="admin", display_name="Administrator", role=Role.ADMIN, password_hash=pw_hash)
    )
    await session.commit()
    log.info("bootstrap admin created", extra={"username": "admin"})


async def list_users(session: AsyncSession, page: Pagination) -> Page[UserOut]:
    """Every user, by name."""
    stmt = sa.select(User)
    total = await count(session, stmt)
    users = list(
        await session.scalars(stmt.order_by(User.username).limit(page.limit).offset(page.offset))
    )
    perms = await permissions_of(session, [u.id for u in users])
    items = [to_user_out(u, perms[u.id]) for u in users]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def create_user(session: AsyncSession, body: UserCreate, admin: User) -> UserOut:
    """Create (and audit) a local user; Conflict when the name is taken."""
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


async def update_user(
    session: AsyncSession, user_id: int, body: UserUpdate, admin: User
) -> UserOut:
    """Change a user's role, name, password or whether they may log in (audited); an admin
    cannot demote or disable themselves."""
    user = await get_user(session, user_id)
    before = _snapshot(user)
    if user.id == admin.id and (body.role not in (None, admin.role) or body.active is False):
        raise InvalidInput("an admin cannot demote or disable themselves")
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        accounts.set_active(user, body.active)
    after = _snapshot(user)
    if body.password is not None:
        user.password_hash = await asyncio.to_thread(hash_password, body.password)
        after["password"] = "changed"
    audit(session, admin, "update", "user", user.id, before=before, after=after)
    await session.commit()
    return await user_out(session, user)


async def set_permissions(
    session: AsyncSession, user_id: int, plot_types: list[str], admin: User
) -> UserOut:
    """Set the plot types the user may label (replacing the previous set; audited);
    InvalidInput naming unknown plot types."""
    user = await get_user(session, user_id)
    wanted = sorted(set(plot_types))
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


async def grant_or_revoke(
    session: AsyncSession, admin: User, user_id: int, plot_type_id: int, grant: bool
) -> UserOut:
    """Let the user label one more plot type, or stop them (audited when it changes
    something)."""
    user = await get_user(session, user_id)
    pt = await plot_type_by_id(session, plot_type_id)
    before = await accounts.permissions(session, user)
    if grant:
        changed = await accounts.grant(session, user, [pt.name])
    else:
        changed = await accounts.revoke(session, user, [pt.name])
    if changed:
        audit(
            session,
            admin,
            "grant" if grant else "revoke",
            "user",
            user.id,
            before={"plot_types": before},
            after={"plot_types": await accounts.permissions(session, user), "changed": changed},
        )
    await session.commit()
    return await user_out(session, user)


async def audit_page(
    session: AsyncSession,
    limit: int,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    username: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
) -> AuditPage:
    """Recorded changes, newest first, filtered; a keyset page (entries older than
    ``before_id``): no count, no offset."""
    stmt = sa.select(AuditLog)
    for column, value in (
        (AuditLog.entity, entity),
        (AuditLog.entity_id, entity_id),
        (AuditLog.username, username),
        (AuditLog.action, action),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(AuditLog.at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    rows = list(await session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit + 1)))
    items = [AuditEntry.model_validate(r) for r in rows[:limit]]
    return AuditPage(items=items, next_before_id=items[-1].id if len(rows) > limit else None)
