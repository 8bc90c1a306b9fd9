"""Who may change what of a plot type, and which user a session or a single sign-on proxy
stands for: the domain functions called directly (no HTTP)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.domain import permissions, sessions
from hydra_api.security import SessionClaims, password_fingerprint
from hydra_common.db.schema import Role, User
from hydra_common.errors import PermissionDenied, Unauthenticated

Check = Callable[[AsyncSession, User, int], Awaitable[None]]
# Each check, and the roles it lets through for every plot type and for granted ones only.
CHECKS: list[tuple[Check, set[Role], set[Role]]] = [
    (permissions.check_labelling, {Role.ADMIN, Role.DEVELOPER}, {Role.EXPERT, Role.LABELER}),
    (permissions.check_model_editing, {Role.ADMIN, Role.DEVELOPER}, {Role.EXPERT}),
    (permissions.check_mask_editing, {Role.ADMIN}, {Role.EXPERT}),
]


@pytest.mark.parametrize(
    ("check", "anywhere", "scoped"), CHECKS, ids=["labelling", "model_editing", "mask_editing"]
)
async def test_each_role_may_or_may_not_with_and_without_the_grant(
    api: Any, check: Check, anywhere: set[Role], scoped: set[Role]
) -> None:
    granted, other = await api.plot_type(), await api.plot_type()
    for role in Role:
        user = await api.user(role, (granted,))
        async with api.session() as s:  # a new one, that sees the user's grant
            for pt, may in ((granted, role in anywhere | scoped), (other, role in anywhere)):
                if may:
                    await check(s, user, pt.id)
                else:
                    with pytest.raises(PermissionDenied):
                        await check(s, user, pt.id)


def _claims(user: User, **kw: Any) -> SessionClaims:
    values: dict[str, Any] = {
        "user_id": user.id,
        "expires": time.time() + 3600,
        "nonce": uuid.uuid4().hex,
        "password_fingerprint": password_fingerprint(user.password_hash),
        "issued": time.time(),
    }
    return SessionClaims(**(values | kw))


async def test_a_session_holds_until_its_user_or_password_changes_or_it_is_revoked(
    api: Any,
) -> None:
    user = await api.user(Role.VIEWER)
    async with api.session() as s:
        found = await sessions.session_user(s, _claims(user))
        assert found is not None and found.id == user.id
        assert await sessions.session_user(s, _claims(user, user_id=-1)) is None
        assert await sessions.session_user(s, _claims(user, password_fingerprint="old")) is None
        revoked = _claims(user)
        await sessions.revoke(s, revoked, user)
        assert await sessions.session_user(s, revoked) is None
        stored = await s.get(User, user.id)
        assert stored is not None
        stored.active = False
        await s.commit()
        assert await sessions.session_user(s, _claims(user)) is None


async def test_a_proxy_user_is_made_once_and_takes_the_groups_role(api: Any) -> None:
    name = api.unique("sso")
    async with api.session() as s:
        first = await sessions.sso_user(s, name, None, local_accounts=False)
        assert first.role is Role.VIEWER and first.password_hash is None
        again = await sessions.sso_user(s, name, Role.EXPERT, local_accounts=False)
        assert again.id == first.id and again.role is Role.EXPERT
        rows = await s.scalars(sa.select(User.id).where(User.username == name))
        assert list(rows) == [first.id]


async def test_a_proxy_may_not_name_a_local_or_disabled_account(api: Any) -> None:
    local = await api.user(Role.ADMIN)
    async with api.session() as s:
        with pytest.raises(Unauthenticated, match="local account"):
            await sessions.sso_user(s, local.username, None, local_accounts=False)
        found = await sessions.sso_user(s, local.username, None, local_accounts=True)
        assert found.id == local.id and found.role is Role.ADMIN
        found.active = False
        await s.commit()
        with pytest.raises(Unauthenticated, match="disabled"):
            await sessions.sso_user(s, local.username, None, local_accounts=True)
