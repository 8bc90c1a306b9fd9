"""Users and their per-plot-type labelling permissions: the rules the admin pages and
``hydra user`` share (routers and commands parse, authorise and audit; these change rows).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import PlotType, User, UserPermission, utcnow
from hydra_common.errors import InvalidInput, NotFound


async def user_by_name(session: AsyncSession, username: str) -> User:
    """The user called username; NotFound when there is none."""
    user = await session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


async def plot_type_ids(session: AsyncSession, names: Iterable[str]) -> dict[str, int]:
    """Plot-type name -> id for every name; InvalidInput naming the unknown ones."""
    wanted = sorted(set(names))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), 500):  # small IN lists on every backend
        rows = await session.execute(
            sa.select(PlotType.name, PlotType.id).where(PlotType.name.in_(wanted[i : i + 500]))
        )
        found.update(rows.tuples().all())
    missing = [n for n in wanted if n not in found]
    if missing:
        raise InvalidInput(f"unknown plot types: {', '.join(missing[:20])}")
    return found


async def permissions(session: AsyncSession, user: User) -> list[str]:
    """Plot-type names the user may label, by name."""
    rows = await session.scalars(
        sa.select(PlotType.name)
        .join(UserPermission, UserPermission.plot_type_id == PlotType.id)
        .where(UserPermission.user_id == user.id)
        .order_by(PlotType.name)
    )
    return list(rows)


async def grant(session: AsyncSession, user: User, names: Iterable[str]) -> list[str]:
    """Let the user label these plot types; returns those newly granted (by name)."""
    ids = await plot_type_ids(session, names)
    have = set(await permissions(session, user))
    added = sorted(n for n in ids if n not in have)
    session.add_all(UserPermission(user_id=user.id, plot_type_id=ids[n]) for n in added)
    await session.flush()
    return added


async def revoke(session: AsyncSession, user: User, names: Iterable[str] | None) -> list[str]:
    """Take these plot types (None: every one) from the user; returns those removed."""
    have = await permissions(session, user)
    if names is None:
        removed = have
    else:
        ids = await plot_type_ids(session, names)
        removed = sorted(n for n in ids if n in have)
        if removed:
            await session.execute(
                sa.delete(UserPermission).where(
                    UserPermission.user_id == user.id,
                    UserPermission.plot_type_id.in_([ids[n] for n in removed]),
                )
            )
        return removed
    await session.execute(sa.delete(UserPermission).where(UserPermission.user_id == user.id))
    return removed


def set_active(user: User, active: bool) -> bool:
    """Enable or disable the user; disabling ends every session for good (enabling again
    needs a new login). True when something changed."""
    if user.active == active:
        return False
    if not active:
        user.sessions_valid_after = utcnow()
    user.active = active
    return True
