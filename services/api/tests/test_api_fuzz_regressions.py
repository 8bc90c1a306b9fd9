"""Regressions found by fuzzing the API (tests/test_security_schemathesis.py)."""

from __future__ import annotations

from typing import Any

from hydra_api.main import create_app
from hydra_api.settings import ApiSettings


async def test_offset_beyond_the_database_range_is_refused(api: Any) -> None:
    # MariaDB's OFFSET is unsigned 64-bit: a bigger one failed the query (500).
    r = await api.client.get("/api/plot-types", params={"offset": str(2**67)})
    assert r.status_code == 422
    r = await api.client.get("/api/plot-types", params={"offset": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["items"] == []


async def test_leaderboard_days_that_overflow_a_date_are_refused(api: Any) -> None:
    # timedelta(days=3.7e16) raised OverflowError (500).
    r = await api.client.get("/api/labels/leaderboard", params={"days": "3.692992544336074e16"})
    assert r.status_code == 422
    r = await api.client.get("/api/labels/leaderboard", params={"days": "36500"})
    assert r.status_code == 200


def test_every_operation_documents_its_error_answers() -> None:
    app = create_app(ApiSettings(secret_key="x" * 48, database_url="sqlite+aiosqlite://"))
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"401", "403", "404", "409", "422"} <= codes, (method, path, codes)
            schema = op["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)


async def test_nul_byte_in_a_front_end_path(api_factory: Any, tmp_path: Any) -> None:
    # Path.resolve() raised "embedded null byte" in the front end's fallback route (500).
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<title>Hydra</title>")
    api = await api_factory(static_dir=str(static))
    r = await api.client.get("/runs/a%00b.png")
    assert r.status_code == 200 and "Hydra" in r.text
