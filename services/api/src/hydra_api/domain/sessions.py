"""Logins and revoked sessions: the rows behind logging in and out, the user a session
cookie stands for, and the user a single sign-on proxy names."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.security import SessionClaims, password_fingerprint
from hydra_common.db.schema import RevokedSession, Role, User, utcnow
from hydra_common.errors import Unauthenticated


async def user_named(session: AsyncSession, username: str) -> User | None:
    """The user with this name, if any."""
    return await session.scalar(sa.select(User).where(User.username == username))


async def revoke(session: AsyncSession, claims: SessionClaims, user: User) -> None:
    """Keep the session's nonce in ``revoked_sessions`` until its cookie would expire (every
    replica, and this one after a restart, refuses it), drop the expired ones, and commit."""
    now = utcnow()
    await session.execute(sa.delete(RevokedSession).where(RevokedSession.expires_at < now))
    if await session.get(RevokedSession, claims.nonce) is None:
        session.add(
            RevokedSession(
                nonce=claims.nonce,
                user_id=user.id,
                expires_at=datetime.fromtimestamp(claims.expires, UTC),
            )
        )
    await session.commit()


async def session_user(session: AsyncSession, claims: SessionClaims) -> User | None:
    """The user a verified session cookie stands for, or None when the session no longer
    holds: the user is gone or disabled, changed their password, had their sessions ended
    after this one began, or logged this one out."""
    user = await session.get(User, claims.user_id)
    if (
        user is None
        or not user.active
        or password_fingerprint(user.password_hash) != claims.password_fingerprint
        or (
            user.sessions_valid_after is not None
            and claims.issued < user.sessions_valid_after.timestamp()
        )
        or await session.get(RevokedSession, claims.nonce) is not None
    ):
        return None
    return user


async def sso_user(
    session: AsyncSession, username: str, role: Role | None, *, local_accounts: bool
) -> User:
    """The user a single sign-on proxy names, created (a viewer, or ``role``) on their first
    visit; ``role``, which the proxy's groups give, replaces the stored one when set. A local
    account (one with a password) is refused unless ``local_accounts``, and so is a disabled
    user."""
    user = await user_named(session, username)
    if user is None:
        user = User(username=username, display_name=username, role=role or Role.VIEWER)
        session.add(user)
        try:
            await session.commit()
        except IntegrityError:  # another request created it first
            await session.rollback()
            user = await user_named(session, username)
    assert user is not None
    if user.password_hash and not local_accounts:
        raise Unauthenticated(f"{username} is a local account: log in with its password")
    if role is not None and user.role != role:
        user.role = role  # the proxy's groups are the source of truth
        await session.commit()
    if not user.active:
        raise Unauthenticated("user is disabled")
    return user
