"""One input policy for the API: what a request may carry, and what an odd one gets back.

- Integers are bounded to the database's columns: ids (``Id`` in a path, ``StoredId`` in a
  body) to ``INTEGER``, run numbers to ``BIGINT``. Beyond that a request gets 422, never a
  database overflow (a 500 on SQLite, a silent miss on MySQL).
- Strings: every request model inherits ``Input``, whose ``str_max_length`` bounds a field
  that names no tighter limit; query strings carry their own ``max_length``.
- Numbers must be finite (``NaN`` and ``Infinity`` are JSON extensions Python accepts).
- Datetimes without a zone are read as UTC (``UtcDatetime``), the zone Hydra stores.
- A request body is at most ``HYDRA_MAX_BODY_BYTES`` (1 MB): 413 before anything reads it.
- A validation error answers with what was wrong and where, never the input itself (a
  10 MB array must not come back in the answer), and is logged as one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hydra_common.logs import get_logger

log = get_logger(__name__)

INT32_MAX = 2**31 - 1  # INTEGER: every id
INT64_MAX = 2**63 - 1  # BIGINT: run numbers
MAX_STRING = 20_000  # a string field that names no tighter limit
MAX_QUERY_STRING = 256  # a text filter in a query string
MAX_ISSUES = 20  # validation issues reported at most


def plain_text(value: str) -> str:
    """Text with any HTML markup removed (news is plain text; pages never render HTML)."""
    parser = _TextOnly()
    parser.feed(value)
    parser.close()
    return "".join(parser.parts)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


PlainText = Annotated[str, AfterValidator(plain_text)]


def as_utc(value: datetime) -> datetime:
    """A datetime in UTC; one without a zone is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = Annotated[int, Path(ge=1, le=INT32_MAX, description="A row id.")]
StoredId = Annotated[int, Field(ge=1, le=INT32_MAX)]
RunNumber = Annotated[int, Field(ge=0, le=INT64_MAX)]
RunNumberQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="Run number.")]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
TextQuery = Annotated[str | None, Query(max_length=MAX_QUERY_STRING)]


class Input(BaseModel):
    """Base of every request body: finite numbers, bounded strings."""

    model_config = ConfigDict(allow_inf_nan=False, str_max_length=MAX_STRING)


def _issue(error: dict[str, Any]) -> dict[str, Any]:
    # Only where and what: ``input`` may be huge or not JSON (NaN), ``ctx`` may hold objects.
    return {
        "loc": [p if isinstance(p, int) else str(p)[:100] for p in error.get("loc", ())][:10],
        "msg": str(error.get("msg", ""))[:300],
        "type": str(error.get("type", ""))[:100],
    }


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with the issues, without the input; one log line."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    issues = [_issue(e) for e in errors[:MAX_ISSUES]]
    log.info(
        "invalid request",
        extra={
            "method": request.method,
            "path": request.url.path[:200],
            "issues": len(errors),
            "first": issues[0]["msg"] if issues else "",
        },
    )
    return JSONResponse({"detail": issues}, status_code=422)


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body sent
    in chunks is counted as it arrives and cut off once it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = b'{"detail":"request body too large"}'
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """The body passed the limit while it was being read."""
