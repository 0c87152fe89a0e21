"""Limits every request meets before any route runs: its body size and its query parameters.

- A body over `MAX_BODY_BYTES` is a `413 Content Too Large`, and is never read past the limit.
  With a `Content-Length` (which the server holds the body to) the answer is decided from the
  header alone: the app does not run and the body is not read at all. Without one (a chunked
  upload) the chunks are counted as the app reads them; the chunk that crosses the limit is
  dropped, the 413 is sent at once, and the app is told that the client went away, so it stops
  reading and whatever it would answer is discarded.
- A query parameter whose name or value is longer than `MAX_QUERY_PARAM_LENGTH` characters is
  a 422 naming it, before any route parses it.

The API answers in its own shape (`{"detail": ...}`); the admin and every other page get one
line of plain text.

Starlette 1.10 / FastAPI 0.165 ship a body limit (`FastAPI(max_body_size=...)`), but it
signals an overflow by raising through the app: the generated routes' body reader
(`backend/crud/operation.py`) turns that into a 400 for a chunked body (checked), and its 413
is Starlette's plain text. Cutting the stream here needs no cooperation from the app. A plain
ASGI middleware: a request without a body and with a short query string costs a scan of its
headers and one length comparison (about a microsecond, not measurable against a request).
"""

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.config import Settings

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
_DISCONNECT: Message = {"type": "http.disconnect"}
_UNFRAMED_MEANS_EMPTY = ("1.1", "1.0")  # HTTP/2 and 3 frame a body without either header


class RequestLimits:
    """Refuses bodies over `max_body_bytes` (413) and over-long query parameters (422)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.max_query_param_length = settings.max_query_param_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if len(query) > self.max_query_param_length:  # else no part of it can be too long
            too_long = self._too_long_parameter(query)
            if too_long is not None:
                await self._refuse_parameter(scope, send, too_long)
                return
        content_length = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value
                break
            if name == b"transfer-encoding":
                chunked = True
        if content_length is not None:
            # The server reads exactly this many bytes for the request (h11, httptools).
            if content_length.isdigit() and int(content_length) <= self.max_body_bytes:
                await self.app(scope, receive, send)
            else:
                await self._refuse_body(scope, send)
        elif chunked or scope.get("http_version") not in _UNFRAMED_MEANS_EMPTY:
            await _CountedBody(self, scope, receive, send).run()
        else:  # HTTP/1: a request with neither header has no body
            await self.app(scope, receive, send)

    def _too_long_parameter(self, query: bytes) -> str | None:
        """The first parameter whose name or value is too long, as Starlette decodes them."""
        limit = self.max_query_param_length
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if len(name) > limit:
                return name[:64] + "..."
            if len(value) > limit:
                return name
        return None

    async def _refuse_parameter(self, scope: Scope, send: Send, name: str) -> None:
        limit = self.max_query_param_length
        if _is_api(scope):
            error = {
                "type": "string_too_long",
                "loc": ["query", name],
                "msg": f"{name}: must be at most {limit} characters long",
                "ctx": {"max_length": limit},
            }
            body = json.dumps({"detail": [error]}, separators=(",", ":")).encode()
            media_type = b"application/json"
        else:
            body = f"The query parameter {name!r} is longer than {limit} characters.\n".encode()
            media_type = b"text/plain; charset=utf-8"
        await _respond(send, 422, body, media_type)

    async def _refuse_body(self, scope: Scope, send: Send) -> None:
        limit = self.max_body_bytes
        if _is_api(scope):
            detail = f"The request body is larger than the limit of {limit} bytes."
            body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
            media_type = b"application/json"
        else:
            body = f"The form sent is larger than the limit of {limit} bytes.\n".encode()
            media_type = b"text/plain; charset=utf-8"
        await _respond(send, 413, body, media_type, close=True)


class _CountedBody:
    """One request without a Content-Length: its body counted chunk by chunk as it is read."""

    def __init__(self, limits: RequestLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self.server_receive = receive
        self.server_send = send
        self.received = 0
        self.response_started = False
        self.refused = False

    async def run(self) -> None:
        try:
            await self.limits.app(self.scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise
            # The app failed reading a body it was told was abandoned: the 413 is the answer.
            logger.debug("after a 413, the app raised", exc_info=True)

    async def receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        message = await self.server_receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_body_bytes:
                self.refused = True
                if not self.response_started:
                    self.response_started = True
                    await self.limits._refuse_body(self.scope, self.server_send)
                return _DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 went out instead
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.server_send(message)


def _is_api(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return path.startswith(API_PREFIX)


async def _respond(
    send: Send, status: int, body: bytes, media_type: bytes, *, close: bool = False
) -> None:
    headers: list[Any] = [
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:  # the rest of the body is never read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
