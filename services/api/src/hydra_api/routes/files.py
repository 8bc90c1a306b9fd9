"""Stored images and heat maps, served only from under the storage root."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from hydra_api.deps import Reader, StateDep
from hydra_common.errors import NotFound

router = APIRouter(tags=["files"])

# Only images: a stored file is never served as HTML or script (no SVG either).
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
# Files named by order id (UUID) never change once written: cache them for a year.
IMMUTABLE_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def resolve_stored(root: Path, path: str) -> Path:
    """The file under root that path names; NotFound for anything outside it or unsafe."""
    if not path or "\x00" in path or "\\" in path:
        raise NotFound("no such file")
    rel = PurePosixPath(path)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts):
        raise NotFound("no such file")
    root = root.resolve()
    try:
        full = (root / rel).resolve()  # follows symlinks: a link out of the root is refused
        found = full.is_relative_to(root) and full.is_file()
    except OSError:  # a name too long for the file system, a loop of links...
        found = False
    if not found:
        raise NotFound("no such file")
    if full.suffix.lower() not in MEDIA_TYPES:
        raise NotFound("no such file")
    return full


@router.get(
    "/api/files/{path:path}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 304: {"description": "Not modified"}},
)
async def get_file(path: str, request: Request, state: StateDep, _reader: Reader) -> Response:
    """A stored image or heat map (cached for a year when named by order id; ETag otherwise)."""
    full = resolve_stored(state.settings.storage_root, path)
    stat = full.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if IMMUTABLE_NAME.match(full.stem):
        cache = "public, max-age=31536000, immutable"
    else:
        cache = "no-cache"
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(full, media_type=MEDIA_TYPES[full.suffix.lower()], headers=headers)
