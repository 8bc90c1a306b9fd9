"""Traversal and injection: every parameter that reaches the file system or the database.

On MariaDB with seeded rows (tests/security/support.py). File paths get ``../``, encoded and
double-encoded dots, absolute paths, NUL bytes, backslashes and symlinks that lead out of
the storage root (and out of the front end's directory); every string parameter that
reaches a query gets SQL-injection and unicode strings. No answer may be a 5xx, none may
carry a file from outside storage or rows the filter should not match, and no table may
change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]

from tests.security import support as sup  # noqa: E402
from tests.security.support import Harness  # noqa: E402

pytestmark = [pytest.mark.mysql]

SECRET = b"TOP-SECRET-outside-storage"
INJECTIONS = (
    "' OR 1=1 --",
    "' OR '1'='1",
    '"; DROP TABLE run_history; --',
    "1; DELETE FROM users; --",
    "%' OR name LIKE '%",
    "\\' OR 1=1 #",
    "admin'/*",
    "\u02bc OR 1=1 --",  # modifier apostrophe: folds to ' in some collations
    "\uff07 OR 1=1 --",  # fullwidth apostrophe
    "\u202e' OR 1=1",  # right-to-left override
    "a\u0000b",
    "%00",
    "' UNION SELECT username, password_hash FROM users --",
)
TRAVERSALS = (
    "../secret.png",
    "../../secret.png",
    "..%2fsecret.png",
    "%2e%2e/secret.png",
    "%2e%2e%2fsecret.png",
    "%252e%252e%252fsecret.png",
    "....//secret.png",
    "..\\secret.png",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "plots/../../secret.png",
    "plots/%2e%2e/%2e%2e/secret.png",
    "secret.png%00.png",
    "link-out/secret.png",
    "link-file.png",
    "link-out/../../secret.png",
)


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    tmp = tmp_path_factory.mktemp("inputs")
    static = tmp / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>Hydra</title>")
    (tmp / "secret.png").write_bytes(SECRET)  # beside storage/ and static/: outside both
    storage = tmp / "storage"
    storage.mkdir()
    (storage / "link-out").symlink_to(tmp)
    (storage / "link-file.png").symlink_to(tmp / "secret.png")
    (static / "link-file.png").symlink_to(tmp / "secret.png")
    async with sup.mysql_harness("hydra_inputs", tmp, static_dir=str(static)) as h:
        yield h


def _leaks(r: Any) -> bool:
    return SECRET in r.content or b"root:x:0:0" in r.content or b"$argon2" in r.content


async def test_stored_file_is_served(harness: Harness) -> None:
    rel = harness.seed.plots[0].image_path
    r = await harness.client().get("/api/files/" + quote(rel))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_file_traversal(harness: Harness, path: str) -> None:
    client = harness.client()
    for url in (f"/api/files/{path}", f"/{path}", f"/assets/{path}"):
        r = await client.get(url)
        assert r.status_code < 500, (url, r.status_code)
        assert not _leaks(r), (url, r.status_code)
        if url.startswith("/api/files/") and ".." not in path:  # the client drops dot segments
            assert r.status_code in (404, 422), (url, r.status_code)


async def test_raw_nul_and_dot_segments_on_the_wire(harness: Harness) -> None:
    """Paths an HTTP client would normalise, sent as raw bytes."""
    client = harness.client()
    for raw in (b"/api/files/../../secret.png", b"/api/files/%00", b"/api/files/a%00.png", b"/.."):
        r = await client.send(client.build_request("GET", "http://testserver" + raw.decode()))
        assert r.status_code < 500 and not _leaks(r), raw


def _string_parameters(app: Any) -> list[tuple[str, str, str]]:
    """(path, parameter, location) of every GET string parameter in the schema."""
    found = []
    for path, item in app.openapi()["paths"].items():
        op = item.get("get")
        if not op or path in ("/api/events", "/api/files/{path}"):
            continue
        for p in op.get("parameters", []):
            schema = p.get("schema", {})
            types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if "string" in types and schema.get("format") != "date-time":
                found.append((path, p["name"], p["in"]))
    return found


async def test_sql_injection_in_query_and_path_strings(harness: Harness) -> None:
    params = _string_parameters(harness.app)
    # The filters a hall uses: if these stop being strings the test must be revisited.
    names = {(p, n) for p, n, _ in params}
    assert ("/api/inferences", "plot_type") in names and ("/api/audit", "entity") in names
    admin = harness.as_role("admin")
    before = await harness.snapshot()
    problems: list[tuple[Any, ...]] = []
    for path, name, where in params:
        for payload in INJECTIONS:
            url = path
            query: dict[str, str] = {}
            if where == "path":
                url = path.replace("{" + name + "}", quote(payload, safe=""))
            else:
                query[name] = payload
            url = url.replace("{model_id}", str(harness.seed.model.id))
            for key in ("{plot_type_id}", "{run_id}", "{user_id}", "{news_id}"):
                url = url.replace(key, "1")
            r = await admin.get(url, params=query)
            if r.status_code >= 500 or _leaks(r):
                problems.append((url, query, r.status_code))
            elif r.status_code == 200 and isinstance(r.json(), dict) and "items" in r.json():
                # A filter that matches nothing must return nothing: a string that escaped
                # into the SQL would match everything.
                if r.json()["items"] and where == "query" and name != "limit":
                    problems.append((url, query, "rows matched", r.json()["items"][:1]))
    assert not problems, problems
    assert await harness.snapshot() == before


async def test_sql_injection_in_bodies(harness: Harness) -> None:
    admin = harness.as_role("admin")
    seed = harness.seed
    before = await harness.snapshot()
    for payload in INJECTIONS:
        calls = [
            ("POST", "/api/labels", [{"plot_id": seed.plots[2].id, "label": payload[:32]}]),
            ("PUT", f"/api/models/{seed.model.id}/thresholds/{quote(payload, safe='')}", None),
            ("POST", "/api/training-runs", {"plot_type": payload}),
            ("PUT", f"/api/users/{seed.users['viewer'].id}/permissions", {"plot_types": [payload]}),
            ("POST", "/api/users", {"username": payload, "role": "admin"}),
        ]
        for method, url, body in calls:
            r = await admin.request(method, url, json={"value": 0.5} if body is None else body)
            # 405: a payload with "/" makes another path, which no PUT route matches.
            assert r.status_code in (404, 405, 422), (method, url, payload, r.status_code)
            assert not _leaks(r)
    assert await harness.snapshot() == before


async def test_sql_injection_in_login(harness: Harness) -> None:
    anon = harness.client()
    before = await harness.snapshot()
    for payload in INJECTIONS[:4]:
        r = await anon.post("/api/auth/login", json={"username": payload, "password": payload})
        assert r.status_code == 401, (payload, r.status_code)
        r = await anon.post(
            "/api/auth/login",
            json={"username": harness.seed.users["admin"].username, "password": payload},
        )
        assert r.status_code in (401, 429), (payload, r.status_code)
    assert await harness.snapshot() == before


async def test_no_other_users_data_for_a_viewer(harness: Harness) -> None:
    """A viewer asking for the admin-only lists, even with injected filters, gets 403."""
    viewer = harness.as_role("viewer")
    for url in ("/api/users", "/api/audit"):
        for payload in ("", *INJECTIONS[:3]):
            r = await viewer.get(url, params={"entity": payload} if payload else {})
            assert r.status_code == 403 and not _leaks(r), (url, payload)
    me = await viewer.get("/api/auth/me")
    assert me.status_code == 200 and "password" not in me.text.lower().replace("has_password", "")
