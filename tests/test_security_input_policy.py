"""One input policy for the API: odd and oversized input gets a clear 4xx, never a 500.

Driven by the OpenAPI schema where it can be: every integer path and query parameter of
every GET operation is tried with values beyond the database's integer range. On MariaDB
with seeded rows (tests/security/support.py), through the app's ASGI interface: a 500 would
surface as an exception or a 5xx status.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

from tests.security import support as sup  # noqa: E402
from tests.security.support import Harness  # noqa: E402

HUGE = ("99999999999999999999", str(2**63), "-99999999999999999999")


@pytest.fixture(scope="module", params=["sqlite", "mysql"])
async def harness(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    """The embedded default (SQLite overflows on a big integer) and MariaDB."""
    tmp = tmp_path_factory.mktemp("policy")
    static = tmp / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>Hydra</title>")
    if request.param == "sqlite":
        from hydra_common.db.migrate import upgrade

        url = f"sqlite+aiosqlite:///{tmp / 'hydra.db'}"
        upgrade(url)
        h = await sup.start(url, tmp, static_dir=str(static))
        try:
            yield h
        finally:
            await h.close()
        return
    async with sup.mysql_harness("hydra_policy", tmp, static_dir=str(static)) as h:
        yield h


def _int_params(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(path template, parameter name, where) of every integer parameter of a GET."""
    out = []
    for path, ops in schema["paths"].items():
        op = ops.get("get")
        if not op:
            continue
        for p in op.get("parameters", []):
            s = p.get("schema", {})
            kinds = {s.get("type")} | {a.get("type") for a in s.get("anyOf", [])}
            if "integer" in kinds:
                out.append((path, p["name"], p["in"]))
    return out


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_integers_beyond_the_database_range_are_4xx(harness: Harness) -> None:
    admin = harness.as_role("admin")
    schema = harness.app.openapi()
    params = _int_params(schema)
    assert len(params) >= 10, params  # the schema drives this test: it must find them
    for path, name, where in params:
        # Ids are INTEGER columns: 2**31 is already out of range for them.
        for value in (*HUGE, str(2**31)) if name.endswith("_id") else HUGE:
            if where == "path":
                url = path.replace("{" + name + "}", value)
                url = _fill(url)
            else:
                url = f"{_fill(path)}?{name}={value}"
            r = await admin.get(url)
            assert r.status_code in (400, 404, 422), (url, r.status_code, r.text[:300])
            r.json()  # a JSON answer


async def test_non_finite_numbers_and_big_bodies_are_refused_cleanly(harness: Harness) -> None:
    admin = harness.as_role("admin")
    model = harness.seed.model.id
    r = await admin.put(
        f"/api/models/{model}/thresholds/Bad",
        content=b'{"value": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "NaN" not in json.dumps(r.json())
    # A large array under the body limit: refused, and the answer does not echo it back.
    big = json.dumps([{"plot_id": "not a number " * 3, "label": "Good"}] * 13_000)
    assert 500_000 < len(big) < 1_000_000
    r = await admin.post("/api/labels", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and len(r.content) < 20_000, (r.status_code, len(r.content))
    # Over the body limit (1 MB): 413 before anything reads it, logged in or not.
    anonymous = harness.client()
    r = await anonymous.post(
        "/api/auth/login",
        content=b'{"username": "' + b"a" * 2_000_000 + b'", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413


async def test_long_names_and_filters_are_4xx(harness: Harness) -> None:
    client = harness.client()
    for url in ("/api/files/" + "a" * 300 + ".png", "/api/files/" + "a" * 5000):
        r = await client.get(url)
        assert r.status_code in (400, 404, 414, 422), (url[:40], r.status_code)
    r = await client.get("/" + "a" * 300)  # a page of the app: the front end answers
    assert r.status_code == 200 and "<title>Hydra" in r.text
    r = await client.get("/api/plot-types", params={"name": "x" * 60_000})
    assert r.status_code == 422 and len(r.content) < 20_000


async def test_a_naive_datetime_is_read_as_utc(harness: Harness) -> None:
    admin = harness.as_role("admin")
    r = await admin.post(
        "/api/news", json={"title": "t", "body": "b", "expires_at": "2099-01-01T12:00:00"}
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["expires_at"].startswith("2099-01-01T12:00:00")
    assert r.json()["expires_at"].endswith(("Z", "+00:00"))


async def test_every_answer_carries_the_security_headers(harness: Harness) -> None:
    client = harness.client()
    for url in ("/", "/api/health", "/api/news", "/api/files/nothing.png", "/labeler"):
        r = await client.get(url)
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp, url
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["referrer-policy"] == "same-origin", url
        assert "strict-transport-security" not in r.headers  # plain http: no HSTS


async def test_news_is_plain_text(harness: Harness) -> None:
    admin = harness.as_role("admin")
    body = 'Beam <b>down</b> <script>alert(1)</script><img src=x onerror="alert(2)"> at 3 a.m.'
    r = await admin.post("/api/news", json={"title": "<i>Note</i>", "body": body})
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Note" and r.json()["body"] == "Beam down  at 3 a.m."
