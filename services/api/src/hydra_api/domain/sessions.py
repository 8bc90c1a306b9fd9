"""Local logins and revoked sessions: the rows behind logging in and out."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.security import SessionClaims
from hydra_common.db.schema import RevokedSession, User, utcnow


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
