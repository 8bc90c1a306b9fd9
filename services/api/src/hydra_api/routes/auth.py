"""Logging in and out, and who am I."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response

from hydra_api.deps import CurrentUser, SessionDep, StateDep, client_address, is_https
from hydra_api.domain import sessions
from hydra_api.domain.users import user_out
from hydra_api.models import Detail, LoginIn, Me
from hydra_api.security import CSRF_COOKIE, SESSION_COOKIE, SessionClaims, verify_password
from hydra_common.errors import Unauthenticated
from hydra_common.logs import get_logger

router = APIRouter(tags=["auth"])
log = get_logger(__name__)


def _secure(request: Request, state: StateDep) -> bool:
    configured = state.settings.cookie_secure
    return is_https(request) if configured is None else configured


def set_csrf_cookie(response: Response, request: Request, state: StateDep, token: str) -> None:
    """The double-submit CSRF cookie (readable by the page's script, unlike the session)."""
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=int(state.settings.session_hours * 3600),
        httponly=False,
        samesite="lax",
        secure=_secure(request, state),
        path="/",
    )


@router.post(
    "/api/auth/login",
    response_model=Me,
    responses={401: {"model": Detail}, 429: {"model": Detail}},
)
async def login(
    body: LoginIn, request: Request, response: Response, session: SessionDep, state: StateDep
) -> Me:
    """Log in with a local password; sets the session and CSRF cookies."""
    address = client_address(request)
    wait = state.limiter.retry_after(body.username, address)
    if wait:
        raise HTTPException(
            429, "too many failed logins; try again later", headers={"Retry-After": str(wait)}
        )
    user = await sessions.user_named(session, body.username)
    ok = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, body.password
    )
    if user is None or not ok or not user.active:
        state.limiter.failed(body.username, address)
        log.info("login failed", extra={"username": body.username, "client": address})
        raise Unauthenticated("wrong username or password")
    state.limiter.succeeded(body.username, address)
    lifetime = state.settings.session_hours * 3600
    token = state.signer.issue(user.id, user.password_hash, lifetime)
    claims = state.signer.verify(token)
    assert claims is not None
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime),
        httponly=True,
        samesite="lax",
        secure=_secure(request, state),
        path="/",
    )
    csrf = state.signer.csrf_token(claims.nonce)
    set_csrf_cookie(response, request, state, csrf)
    log.info("login", extra={"username": user.username, "client": address})
    out = await user_out(session, user)
    return Me(**out.model_dump(), csrf_token=csrf)


@router.post("/api/auth/logout", response_model=Detail)
async def logout(
    request: Request, response: Response, session: SessionDep, state: StateDep, user: CurrentUser
) -> Detail:
    """End the session: its cookie stops working at once, in every API replica and after a
    restart (the nonce is kept in ``revoked_sessions`` until the cookie would expire)."""
    claims: SessionClaims | None = getattr(request.state, "session_claims", None)
    if claims is not None:
        state.signer.revoke(claims)
        await sessions.revoke(session, claims, user)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return Detail(detail=f"{user.username} logged out")


@router.get("/api/auth/me", response_model=Me, responses={401: {"model": Detail}})
async def me(
    request: Request, response: Response, session: SessionDep, state: StateDep, user: CurrentUser
) -> Me:
    """The logged-in user and their CSRF token (the CSRF cookie is refreshed too)."""
    csrf = state.signer.csrf_token(request.state.csrf_subject)
    if request.cookies.get(CSRF_COOKIE) != csrf:
        set_csrf_cookie(response, request, state, csrf)
    out = await user_out(session, user)
    return Me(**out.model_dump(), csrf_token=csrf)
