"""Stored images: served from the storage root only, with caching headers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra_common.ids import uuid7

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _store(root: Path, rel: str, data: bytes = PNG) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_order_id_files_are_immutable_and_etagged(api: Any) -> None:
    root = api.settings.storage_root
    oid = uuid7()
    _store(root, f"plots/cdc/2024-05-01/{oid}.png")
    r = await api.client.get(f"/api/files/plots/cdc/2024-05-01/{oid}.png")
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert "immutable" in r.headers["cache-control"]
    assert "max-age=31536000" in r.headers["cache-control"]
    etag = r.headers["etag"]
    again = await api.client.get(
        f"/api/files/plots/cdc/2024-05-01/{oid}.png", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""


async def test_other_names_revalidate(api: Any) -> None:
    _store(api.settings.storage_root, "imported/cdc/run1_0001.png")
    r = await api.client.get("/api/files/imported/cdc/run1_0001.png")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert r.headers["etag"]


async def test_traversal_and_escapes_are_refused(api: Any, tmp_path: Path) -> None:
    root = api.settings.storage_root
    root.mkdir(parents=True, exist_ok=True)
    secret = _store(tmp_path, "outside/secret.png")
    (root / "link").symlink_to(secret.parent, target_is_directory=True)
    os.symlink(secret, root / "escape.png")
    _store(root, "notes.txt", b"text")
    for path in (
        "../outside/secret.png",
        "..%2Foutside%2Fsecret.png",
        "%2e%2e/outside/secret.png",
        "plots/../../outside/secret.png",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "link/secret.png",
        "escape.png",
        "notes.txt",
        "",
        "plots/..\\..\\x.png",
    ):
        r = await api.client.get(f"/api/files/{path}")
        assert r.status_code == 404, (path, r.status_code)
        assert r.content != secret.read_bytes()


async def test_missing_file_is_404(api: Any) -> None:
    r = await api.client.get("/api/files/plots/none/none.png")
    assert r.status_code == 404 and r.json()["detail"] == "no such file"
