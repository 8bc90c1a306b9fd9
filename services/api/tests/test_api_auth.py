"""Logging in, cookies, CSRF, the login rate limit, single sign-on and the bootstrap admin."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from hydra_api.settings import ApiSettings
from hydra_common.db.schema import AuditLog, Role, User

PASSWORD = "correct horse battery"


def _cookie(headers: Any, name: str) -> str:
    for value in headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return str(value)
    raise AssertionError(f"no {name} cookie in {headers.get_list('set-cookie')}")


async def test_login_sets_httponly_lax_session_and_readable_csrf_cookie(api: Any) -> None:
    user = await api.user(Role.VIEWER)
    r = await api.client.post(
        "/api/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert r.status_code == 200
    assert r.json()["username"] == user.username and r.json()["role"] == "viewer"
    session = _cookie(r.headers, "hydra_session").lower()
    assert "httponly" in session and "samesite=lax" in session and "secure" not in session
    csrf = _cookie(r.headers, "hydra_csrf").lower()
    assert "httponly" not in csrf and "samesite=lax" in csrf
    me = await api.client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["username"] == user.username
    assert me.json()["csrf_token"] == r.json()["csrf_token"]


async def test_cookies_are_secure_behind_tls_proxy(api_factory: Any) -> None:
    # The test client's peer is 127.0.0.1: the hall's proxy here.
    api = await api_factory(trusted_proxies="127.0.0.0/8")
    user = await api.user(Role.VIEWER)
    r = await api.client.post(
        "/api/auth/login",
        json={"username": user.username, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 200
    assert "secure" in _cookie(r.headers, "hydra_session").lower()
    assert "secure" in _cookie(r.headers, "hydra_csrf").lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")
    # From a client that is not the proxy, X-Forwarded-Proto means nothing.
    other = _peer(api, "10.9.9.9")
    r = await other.post(
        "/api/auth/login",
        json={"username": user.username, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 200 and "secure" not in _cookie(r.headers, "hydra_session").lower()
    assert "strict-transport-security" not in r.headers


async def test_anonymous_is_401_and_wrong_password_is_401(api: Any) -> None:
    assert (await api.client.get("/api/auth/me")).status_code == 401
    user = await api.user(Role.VIEWER)
    r = await api.client.post(
        "/api/auth/login", json={"username": user.username, "password": "wrong password"}
    )
    assert r.status_code == 401
    r = await api.client.post(
        "/api/auth/login", json={"username": "nobody-at-all", "password": PASSWORD}
    )
    assert r.status_code == 401


async def test_login_rate_limit_per_username(api_factory: Any) -> None:
    # Two failures a minute instead of the default five: each argon2 check costs ~1 s here.
    api = await api_factory(login_failures_per_minute=2)
    user = await api.user(Role.VIEWER)
    body = {"username": user.username, "password": "wrong password"}
    codes = [(await api.client.post("/api/auth/login", json=body)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    # Even the right password is refused while the limit holds.
    r = await api.client.post(
        "/api/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # Another user from the same address is not affected.
    other = await api.user(Role.VIEWER)
    await api.login(api.new_client(), other.username)


async def test_csrf_header_required_on_mutations_with_a_session(api: Any) -> None:
    pt = await api.plot_type()
    client = await api.as_role(Role.ADMIN)
    token = client.headers.pop("X-CSRF-Token")
    r = await client.patch(f"/api/plot-types/{pt.id}", json={"collect_percent": 5})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = await client.patch(
        f"/api/plot-types/{pt.id}", json={"collect_percent": 5}, headers={"X-CSRF-Token": "x" * 32}
    )
    assert r.status_code == 403
    r = await client.patch(
        f"/api/plot-types/{pt.id}", json={"collect_percent": 5}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 200 and r.json()["collect_percent"] == 5


async def test_logout_ends_the_session(api: Any) -> None:
    client = await api.as_role(Role.VIEWER)
    cookie = client.cookies.get("hydra_session")
    assert (await client.post("/api/auth/logout")).status_code == 200
    assert (await client.get("/api/auth/me")).status_code == 401
    # The old cookie replayed is refused too.
    replay = api.new_client(cookies={"hydra_session": cookie})
    assert (await replay.get("/api/auth/me")).status_code == 401


async def test_tampered_session_cookie_is_ignored(api: Any) -> None:
    client = await api.as_role(Role.ADMIN)
    body, mac = client.cookies.get("hydra_session").split(".")
    forged = api.new_client(cookies={"hydra_session": body + "." + mac[::-1]})
    assert (await forged.get("/api/auth/me")).status_code == 401


def _peer(api: Any, host: str) -> Any:
    """A client whose requests come from ``host`` (as the API sees the TCP peer)."""
    import httpx

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=(host, 40000)),
        base_url="http://testserver",
    )
    api.clients.append(client)
    return client


async def test_trusted_header_creates_viewer_and_needs_csrf(api_factory: Any) -> None:
    api = await api_factory(trusted_user_header="X-Remote-User", trusted_proxies="127.0.0.1")
    name = api.unique("sso")
    r = await api.client.get("/api/auth/me", headers={"X-Remote-User": name})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert r.json()["has_password"] is False
    async with api.session() as s:
        assert await s.scalar(sa.select(User.role).where(User.username == name)) == Role.VIEWER
    # A viewer may not post news; without the CSRF token the request stops earlier.
    r = await api.client.post("/api/news", json={"title": "x"}, headers={"X-Remote-User": name})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]


async def test_bootstrap_admin(api_factory: Any, sqlite_url: str) -> None:
    # An own database (SQLite, the embedded default: it must work there too), with no admin.
    api = await api_factory(database_url=sqlite_url, admin_password="bootstrap-secret-1")
    await api.login(api.client, "admin", "bootstrap-secret-1")
    assert (await api.client.get("/api/auth/me")).json()["role"] == "admin"
    # A second start does not create another or change the password.
    again = await api_factory(database_url=sqlite_url, admin_password="other-password-2")
    async with again.session() as s:
        admins = (await s.scalars(sa.select(User).where(User.role == Role.ADMIN))).all()
    assert [u.username for u in admins] == ["admin"]


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError):
        ApiSettings(environment="production", secret_key="changeme")
    with pytest.raises(ValidationError):
        ApiSettings(environment="production", secret_key="")
    with pytest.raises(ValidationError):
        ApiSettings(environment="production", secret_key="s" * 40, admin_password="changeme")
    ok = ApiSettings(environment="production", secret_key="s" * 40)
    assert ok.secret_key == "s" * 40
    dev = ApiSettings(environment="development", secret_key="")
    assert len(dev.secret_key) >= 32


async def test_run_conditions_service_token_and_roles(api_factory: Any) -> None:
    api = await api_factory(service_token="hall-token-1234567890")
    body = {"run_number": 90001, "beam_current": 120.5, "run_type": "production"}
    assert (await api.client.post("/api/run-conditions", json=body)).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert (await api.client.post("/api/run-conditions", json=body, headers=bad)).status_code == 401
    good = {"Authorization": "Bearer hall-token-1234567890"}
    r = await api.client.post("/api/run-conditions", json=body, headers=good)
    assert r.status_code == 201 and r.json()["beam_current"] == 120.5
    viewer = await api.as_role(Role.VIEWER)
    assert (await viewer.post("/api/run-conditions", json=body)).status_code == 403
    dev = await api.as_role(Role.DEVELOPER)
    r = await dev.post("/api/run-conditions", json={**body, "beam_current": 0.0})
    assert r.status_code == 201
    latest = await api.client.get("/api/run-conditions", params={"run_number": 90001, "limit": 1})
    assert latest.json()["items"][0]["beam_current"] == 0.0
    assert latest.json()["total"] == 2 and latest.json()["next"] == 1
    async with api.session() as s:
        who = (
            await s.scalars(
                sa.select(AuditLog.username)
                .where(AuditLog.entity == "run_condition")
                .order_by(AuditLog.id.desc())
                .limit(2)
            )
        ).all()
    assert who[1] == "service-token"


async def test_the_sso_header_counts_only_from_the_trusted_proxy(api_factory: Any) -> None:
    """Any client can type X-Remote-User: only the hall's proxy is believed, never for a
    local account, and only with a valid user name."""
    api = await api_factory(trusted_user_header="X-Remote-User", trusted_proxies="10.0.0.0/24")
    admin = await api.user(Role.ADMIN)  # a local account: it has a password
    outsider = _peer(api, "192.168.7.7")
    r = await outsider.get("/api/auth/me", headers={"X-Remote-User": admin.username})
    assert r.status_code == 401  # not the proxy: the header is ignored, nobody is logged in
    proxy = _peer(api, "10.0.0.5")
    r = await proxy.get("/api/auth/me", headers={"X-Remote-User": admin.username})
    assert r.status_code == 401 and "local account" in r.json()["detail"]
    r = await proxy.get("/api/auth/me", headers={"X-Remote-User": "<img src=x>"})
    assert r.status_code == 401 and "not a valid" in r.json()["detail"]
    async with api.session() as s:
        assert await s.scalar(sa.select(User).where(User.username == "<img src=x>")) is None
    name = api.unique("sso")
    r = await proxy.get("/api/auth/me", headers={"X-Remote-User": name})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    # Configured, the proxy may also speak for local accounts.
    lenient = await api_factory(
        trusted_user_header="X-Remote-User", trusted_proxies="10.0.0.0/24", sso_local_accounts=True
    )
    r = await _peer(lenient, "10.0.0.5").get(
        "/api/auth/me", headers={"X-Remote-User": admin.username}
    )
    assert r.status_code == 200 and r.json()["role"] == "admin"


async def test_sso_groups_decide_the_role(api_factory: Any) -> None:
    api = await api_factory(
        trusted_user_header="X-Remote-User",
        trusted_groups_header="X-Remote-Groups",
        trusted_proxies="127.0.0.1",
        sso_group_roles="dq-experts=expert, dq-admins=admin",
    )
    name = api.unique("sso")
    headers = {"X-Remote-User": name, "X-Remote-Groups": "users;dq-experts"}
    r = await api.client.get("/api/auth/me", headers=headers)
    assert r.status_code == 200 and r.json()["role"] == "expert"
    headers["X-Remote-Groups"] = "dq-experts,dq-admins"  # the highest wins, kept up to date
    assert (await api.client.get("/api/auth/me", headers=headers)).json()["role"] == "admin"


async def test_failed_logins_count_per_username_across_addresses() -> None:
    from hydra_api.security import LoginRateLimiter

    limiter = LoginRateLimiter(2)
    for i in range(8):  # 8 addresses, one failure each: none reaches 2 on its own
        assert limiter.retry_after("alice", f"10.0.0.{i}") == 0
        limiter.failed("alice", f"10.0.0.{i}")
    assert limiter.retry_after("alice", "10.0.0.99") > 0  # 4 x 2 from everywhere together
    assert limiter.retry_after("bob", "10.0.0.99") == 0
    for i in range(100):  # a spray over many names reaches the API's ceiling (50 x 2)
        limiter.failed(f"user{i}", f"10.1.{i}.1")
    assert limiter.retry_after("carol", "10.2.0.1") > 0


async def test_a_spoofed_forwarded_for_does_not_reset_the_count(api_factory: Any) -> None:
    api = await api_factory(login_failures_per_minute=2)  # no trusted proxy
    user = await api.user(Role.VIEWER)
    body = {"username": user.username, "password": "wrong password"}
    codes = [
        (
            await api.client.post(
                "/api/auth/login", json=body, headers={"X-Forwarded-For": f"10.0.0.{i}"}
            )
        ).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]


async def test_logout_holds_in_every_replica_and_after_a_restart(api_factory: Any) -> None:
    """The revocation is in the database: another API process (same secret key, same
    database) refuses the logged-out cookie too."""
    first = await api_factory(secret_key="k" * 40)
    second = await api_factory(secret_key="k" * 40)  # another replica, or after a restart
    user = await first.user(Role.VIEWER)
    await first.login(first.client, user.username)
    cookie = first.client.cookies.get("hydra_session")
    replica = second.new_client(cookies={"hydra_session": cookie})
    assert (await replica.get("/api/auth/me")).status_code == 200
    await first.client.post("/api/auth/logout")
    assert (await replica.get("/api/auth/me")).status_code == 401


async def test_disabling_a_user_ends_their_sessions_for_good(api: Any) -> None:
    user = await api.user(Role.EXPERT)
    client = api.new_client()
    await api.login(client, user.username)
    assert (await client.get("/api/auth/me")).status_code == 200
    admin = await api.as_role(Role.ADMIN)
    r = await admin.patch(f"/api/users/{user.id}", json={"active": False})
    assert r.status_code == 200
    assert (await client.get("/api/auth/me")).status_code == 401
    r = await admin.patch(f"/api/users/{user.id}", json={"active": True})
    assert r.status_code == 200
    # Enabled again, the old cookie still does not work: a new login does.
    assert (await client.get("/api/auth/me")).status_code == 401
    fresh = api.new_client()
    await api.login(fresh, user.username)
    assert (await fresh.get("/api/auth/me")).status_code == 200


def test_malformed_proxy_and_group_settings_fail_at_start_up() -> None:
    with pytest.raises(ValidationError, match="not an address or CIDR"):
        ApiSettings(trusted_proxies="10.0.0.0/8, the-ingress")
    with pytest.raises(ValidationError, match="unknown role"):
        ApiSettings(sso_group_roles="dq=superuser")
    assert ApiSettings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies
