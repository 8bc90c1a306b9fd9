"""Request dependencies: the database session, the caller, and role checks.

Use the ``Annotated`` aliases in route signatures: ``session: SessionDep``,
``user: CurrentUser``, ``user: AdminUser``...
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hydra_api import sso
from hydra_api.domain import sessions
from hydra_api.domain.permissions import NEWS_EDITORS
from hydra_api.events import RuntimeBroadcaster
from hydra_api.metrics import ApiMetrics
from hydra_api.probes import StatusProbe
from hydra_api.security import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginRateLimiter,
    SessionSigner,
)
from hydra_api.settings import ApiSettings
from hydra_api.training import TrainingLauncher
from hydra_common.db.schema import Role, User
from hydra_common.errors import PermissionDenied, Unauthenticated

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AppState:
    """What the routes share: settings, database, signer, metrics and background helpers."""

    settings: ApiSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    signer: SessionSigner
    limiter: LoginRateLimiter
    metrics: ApiMetrics
    probe: StatusProbe = field(default_factory=lambda: StatusProbe([]))
    # Made when the app starts (its lifespan), each start its own: None until then.
    broadcaster: RuntimeBroadcaster | None = None
    launcher: TrainingLauncher | None = None

    def running_broadcaster(self) -> RuntimeBroadcaster:
        """The event broadcaster of the started app."""
        if self.broadcaster is None:
            raise RuntimeError("the API has not started: no event broadcaster yet")
        return self.broadcaster

    def running_launcher(self) -> TrainingLauncher:
        """The training launcher of the started app."""
        if self.launcher is None:
            raise RuntimeError("the API has not started: no training launcher yet")
        return self.launcher


def get_state(request: Request) -> AppState:
    """The application's shared state."""
    state: AppState = request.app.state.hydra
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A database session for one request (routes commit what they change)."""
    async with state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def is_https(request: Request) -> bool:
    """True when the browser reached us over TLS (directly, or as a trusted proxy says)."""
    state: AppState = request.app.state.hydra
    return sso.came_over_https(request, state.settings.trusted_proxies)


def client_address(request: Request) -> str:
    """The caller's address: the peer, or what a trusted proxy forwards."""
    peer = request.client.host if request.client else "unknown"
    state: AppState = request.app.state.hydra
    if sso.from_trusted_proxy(request, state.settings.trusted_proxies):
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
        return forwarded[:64] or peer
    return peer


def _proxy_identity(request: Request, settings: ApiSettings) -> tuple[str, Role | None] | None:
    """The user name a trusted single sign-on proxy sends, and the role its groups give (None:
    no group mapping, or no group in it); None when no trusted proxy names anyone."""
    header_name = settings.trusted_user_header
    if not (
        header_name
        and (name := request.headers.get(header_name, "").strip())
        and sso.from_trusted_proxy(request, settings.trusted_proxies)
    ):
        return None
    if not sso.USERNAME.match(name):
        raise Unauthenticated("the proxy's user name is not a valid Hydra user name")
    mapping = sso.parse_group_roles(settings.sso_group_roles)
    if not mapping:
        return name, None
    groups_header = settings.trusted_groups_header
    groups = sso.split_groups(request.headers.get(groups_header, "")) if groups_header else []
    return name, sso.role_for(groups, mapping)


def _check_csrf(request: Request, state: AppState, subject: str) -> None:
    if request.method in SAFE_METHODS:
        return
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = state.signer.csrf_token(subject)
    if not (
        header and hmac.compare_digest(header, cookie) and hmac.compare_digest(header, expected)
    ):
        raise PermissionDenied(f"missing or wrong {CSRF_HEADER} header (CSRF check)")


async def get_optional_user(request: Request, state: StateDep, session: SessionDep) -> User | None:
    """The logged-in user, or None; a mutating request must carry the CSRF token."""
    settings = state.settings
    if (identity := _proxy_identity(request, settings)) is not None:
        name, role = identity
        user = await sessions.sso_user(
            session, name, role, local_accounts=settings.sso_local_accounts
        )
        request.state.csrf_subject = f"sso:{user.username}"
        _check_csrf(request, state, request.state.csrf_subject)
        return user
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    claims = state.signer.verify(token)
    if claims is None:
        return None
    known = await sessions.session_user(session, claims)
    if known is None:
        return None
    request.state.csrf_subject = claims.nonce
    request.state.session_claims = claims
    _check_csrf(request, state, claims.nonce)
    return known


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    """The logged-in user; 401 when there is none."""
    if user is None:
        raise Unauthenticated("log in first")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_reader(user: OptionalUser, state: StateDep) -> User | None:
    """The caller of a read-only live view: anyone when public_read is on, else a user."""
    if user is None and not state.settings.public_read:
        raise Unauthenticated("log in first")
    return user


Reader = Annotated[User | None, Depends(get_reader)]


def require_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets only users with one of the roles through."""
    allowed = frozenset(roles)

    async def _check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise PermissionDenied(f"role {user.role.value} may not do this")
        return user

    return _check


AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
NewsEditor = Annotated[User, Depends(require_roles(*NEWS_EDITORS))]
DeveloperUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.DEVELOPER))]
