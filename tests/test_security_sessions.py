"""Sessions, passwords, CSRF and the login limit, on MariaDB.

services/api/tests/test_api_auth.py already covers: HttpOnly + SameSite=Lax session cookie
and readable CSRF cookie at login, Secure behind ``X-Forwarded-Proto: https``, 401s, the
login limit per user name, CSRF on one route, logout, a tampered cookie, the trusted header
and the bootstrap admin; test_security_authz covers CSRF on every mutating route. This file
adds what they do not: how passwords are stored, cookie attributes in every place a cookie
is set, sessions that must stop working, and the limit's edges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]

from hydra_api.security import SessionSigner  # noqa: E402
from hydra_common.db.schema import User  # noqa: E402
from hydra_testsupport.names import unique  # noqa: E402
from tests.security import support as sup  # noqa: E402
from tests.security.support import Harness  # noqa: E402

pytestmark = [pytest.mark.mysql]

LIMIT = 2  # failed logins a minute (argon2 costs most of a second a try here)


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    tmp = tmp_path_factory.mktemp("sessions")
    # The test client's peer (127.0.0.1) stands for the hall's TLS-terminating proxy.
    async with sup.mysql_harness(
        "hydra_sessions", tmp, login_failures_per_minute=LIMIT, trusted_proxies="127.0.0.1"
    ) as h:
        yield h


def _cookies(r: Any) -> dict[str, str]:
    """Set-Cookie headers by cookie name, lower-cased."""
    return {v.split("=", 1)[0]: v.lower() for v in r.headers.get_list("set-cookie")}


async def _stored_hash(h: Harness, username: str) -> str:
    async with h.sessionmaker() as s:
        value = await s.scalar(sa.select(User.password_hash).where(User.username == username))
    assert value is not None
    return value


async def test_passwords_are_stored_as_argon2id(harness: Harness) -> None:
    admin = harness.as_role("admin")
    name = unique("pw")
    r = await admin.post("/api/users", json={"username": name, "password": "a long passphrase"})
    assert r.status_code == 201 and "password" not in r.text.replace("has_password", "")
    stored = await _stored_hash(harness, name)
    assert stored.startswith("$argon2id$") and "a long passphrase" not in stored
    # Changing it stores a new argon2id hash (new salt) and ends the user's sessions.
    user = r.json()
    anon = harness.client()
    login = await anon.post(
        "/api/auth/login", json={"username": name, "password": "a long passphrase"}
    )
    assert login.status_code == 200
    anon.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    r = await admin.patch(f"/api/users/{user['id']}", json={"password": "another passphrase"})
    assert r.status_code == 200
    changed = await _stored_hash(harness, name)
    assert changed.startswith("$argon2id$") and changed != stored
    assert (await anon.get("/api/auth/me")).status_code == 401


async def test_cookie_attributes_everywhere_a_cookie_is_set(harness: Harness) -> None:
    user = harness.seed.users["viewer"]
    body = {"username": user.username, "password": sup.PASSWORD}
    tls = {"X-Forwarded-Proto": "https"}
    client = harness.client()
    r = await client.post("/api/auth/login", json=body, headers=tls)
    cookies = _cookies(r)
    session = cookies["hydra_session"]
    assert "httponly" in session and "samesite=lax" in session and "secure" in session
    assert "path=/" in session and f"max-age={(12 * 3600)}" in session
    assert "httponly" not in cookies["hydra_csrf"] and "secure" in cookies["hydra_csrf"]
    # /api/auth/me re-sends a missing CSRF cookie with the same attributes. (The Secure
    # cookies are handed over by hand: the test client speaks plain http.)
    token = r.cookies["hydra_session"]
    me = await harness.client(cookies={"hydra_session": token}).get("/api/auth/me", headers=tls)
    csrf = _cookies(me)["hydra_csrf"]
    assert me.status_code == 200 and "secure" in csrf and "samesite=lax" in csrf
    # Plain http (or a proxy saying http) gets no Secure flag, so local use works.
    plain = await harness.client().post(
        "/api/auth/login", json=body, headers={"X-Forwarded-Proto": "http"}
    )
    assert "secure" not in _cookies(plain)["hydra_session"]
    # Logging out expires both cookies.
    client = harness.client(cookies={"hydra_session": token, "hydra_csrf": r.cookies["hydra_csrf"]})
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    out = await client.post("/api/auth/logout", headers=tls)
    assert out.status_code == 200
    gone = _cookies(out)
    assert 'hydra_session=""' in gone["hydra_session"] and "max-age=0" in gone["hydra_session"]
    assert "max-age=0" in gone["hydra_csrf"]


async def test_cookie_secure_setting_forces_the_flag(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("secure")
    async with sup.mysql_harness("hydra_secure", tmp, cookie_secure=True) as h:
        user = h.seed.users["viewer"]
        r = await h.client().post(
            "/api/auth/login", json={"username": user.username, "password": sup.PASSWORD}
        )
        assert r.status_code == 200
        assert all("secure" in v for v in _cookies(r).values())


async def test_sessions_that_must_not_work(harness: Harness) -> None:
    admin = harness.seed.users["admin"]
    signer = harness.app.state.hydra.signer
    expired = signer.issue(admin.id, admin.password_hash, -5)
    foreign = SessionSigner("another deployment's secret key " * 2).issue(
        admin.id, admin.password_hash, 3600
    )
    other_user = signer.issue(admin.id + 10_000_000, admin.password_hash, 3600)
    for token in (expired, foreign, other_user, "", "garbage", "a.b.c"):
        r = await harness.client(cookies={"hydra_session": token}).get("/api/auth/me")
        assert r.status_code == 401, token
    # A disabled user's live session stops at once.
    victim = await _new_user(harness)
    client = harness.as_user(victim)
    assert (await client.get("/api/auth/me")).status_code == 200
    r = await harness.as_role("admin").patch(f"/api/users/{victim.id}", json={"active": False})
    assert r.status_code == 200
    assert (await client.get("/api/auth/me")).status_code == 401


async def _new_user(h: Harness) -> User:
    user = User(username=unique("victim"), role=sup.ROLES["viewer"][0])
    user.password_hash = sup.password_hash()
    await h.add(user)
    return user


async def test_csrf_needs_header_and_cookie_to_match_the_session(harness: Harness) -> None:
    news = {"title": "csrf probe"}
    before = await harness.snapshot(("news",))
    cookies, csrf = harness.session_cookies(harness.seed.users["admin"])
    header_only = harness.client(cookies={"hydra_session": cookies["hydra_session"]})
    r = await header_only.post("/api/news", json=news, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403  # the double-submit cookie is missing
    cookie_only = harness.client(cookies=cookies)
    assert (await cookie_only.post("/api/news", json=news)).status_code == 403
    forged = harness.client(cookies={**cookies, "hydra_csrf": "f" * 32})
    r = await forged.post("/api/news", json=news, headers={"X-CSRF-Token": "f" * 32})
    assert r.status_code == 403  # matching cookie and header, but not this session's token
    assert await harness.snapshot(("news",)) == before
    # Reading needs no token.
    assert (await cookie_only.get("/api/users")).status_code == 200


async def test_trusted_user_header_is_ignored_when_not_configured(harness: Harness) -> None:
    anon = harness.client()
    for header in ("X-Remote-User", "X-Forwarded-User", "Remote-User"):
        r = await anon.get("/api/auth/me", headers={header: harness.seed.users["admin"].username})
        assert r.status_code == 401
    r = await anon.post("/api/news", json={"title": "x"}, headers={"X-Remote-User": "admin"})
    assert r.status_code == 401


async def test_login_limit_is_per_user_name_in_any_case(harness: Harness) -> None:
    user = harness.seed.users["liaison"]
    anon = harness.client()
    wrong = {"username": user.username, "password": "not the password"}
    codes = [(await anon.post("/api/auth/login", json=wrong)).status_code for _ in range(LIMIT)]
    assert codes == [401] * LIMIT
    # The same name in other letters is the same account as far as the limit goes.
    r = await anon.post(
        "/api/auth/login", json={"username": user.username.upper(), "password": sup.PASSWORD}
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    r = await anon.post(
        "/api/auth/login", json={"username": user.username, "password": sup.PASSWORD}
    )
    assert r.status_code == 429 and "set-cookie" not in r.headers
